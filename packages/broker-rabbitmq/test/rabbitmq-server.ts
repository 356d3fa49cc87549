import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';

const run = promisify(execFile);

/** The local broker the tests use; CI and developers start it the same way. */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const SERVER_HINT = `RabbitMQ at ${AMQP_URL} (start: rabbitmq-server -detached)`;

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 120_000 });
  return stdout;
}

/**
 * Restarts the RabbitMQ application (not the Erlang node): every client connection is closed
 * with CONNECTION_FORCED and durable queues come back. start_app runs even if stop_app failed
 * halfway, so a failing test never leaves the broker down for the next one.
 */
export async function restartRabbitmq(): Promise<void> {
  try {
    await rabbitmqctl('stop_app');
  } finally {
    await ensureRabbitmqRunning();
  }
}

/** Starts the application if stopped (start_app on a running app is a no-op) and waits for AMQP. */
export async function ensureRabbitmqRunning(): Promise<void> {
  await rabbitmqctl('start_app');
  await rabbitmqctl('await_startup');
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const connection = await amqp.connect(AMQP_URL);
      await connection.close();
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`${SERVER_HINT} did not accept connections after start_app: ${error}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Publishes a body as a producer in another language would: to the queue, no properties. */
export async function publishRaw(queueName: string, body: string): Promise<void> {
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createConfirmChannel();
    // Passive: a missing queue fails here instead of the message vanishing unrouted.
    await channel.checkQueue(queueName);
    channel.sendToQueue(queueName, Buffer.from(body, 'utf8'), { persistent: true });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** Deletes every queue whose name starts with prefix, so test runs do not pile up queues. */
export async function deleteQueuesWithPrefix(prefix: string): Promise<number> {
  const names = (await rabbitmqctl('list_queues', '--quiet', '--no-table-headers', 'name'))
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => name.startsWith(`${prefix}.`));
  if (names.length === 0) return 0;
  const connection = await amqp.connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    for (const name of names) await channel.deleteQueue(name);
    return names.length;
  } finally {
    await connection.close();
  }
}
