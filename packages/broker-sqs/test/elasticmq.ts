import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  DeleteQueueCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';

const run = promisify(execFile);

/** The local SQS-compatible server the tests use; CI and developers start it the same way. */
export const SQS_ENDPOINT = process.env.SQS_ENDPOINT ?? 'http://127.0.0.1:9324';
const SCRIPT = fileURLToPath(new URL('../../../scripts/services/elasticmq/elasticmq.sh', import.meta.url));
export const SERVER_HINT = `ElasticMQ at ${SQS_ENDPOINT} (start: scripts/services/elasticmq/start.sh && scripts/services/elasticmq/wait.sh)`;

export function testClient(): SQSClient {
  return new SQSClient({
    endpoint: SQS_ENDPOINT,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
}

/** Stops and starts ElasticMQ (in memory: every queue is gone afterwards) and waits until it answers. */
export async function restartElasticmq(): Promise<void> {
  try {
    await run(SCRIPT, ['stop'], { timeout: 60_000 });
  } finally {
    await ensureElasticmqRunning();
  }
}

export async function ensureElasticmqRunning(): Promise<void> {
  await run(SCRIPT, ['start'], { timeout: 300_000 });
  await run(SCRIPT, ['wait'], { timeout: 120_000 });
}

/** Sends a body as a producer in another language would: no attributes (FIFO: the ids SQS requires). */
export async function publishRaw(queueName: string, body: string): Promise<void> {
  const client = testClient();
  try {
    const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: queueName }));
    const fifo = queueName.endsWith('.fifo');
    await client.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: body,
        ...(fifo ? { MessageGroupId: 'raw', MessageDeduplicationId: randomUUID() } : {}),
      }),
    );
  } finally {
    client.destroy();
  }
}

/** Deletes every queue whose name starts with prefix, so test runs do not pile up queues. */
export async function deleteQueuesWithPrefix(prefix: string): Promise<number> {
  const client = testClient();
  try {
    const { QueueUrls = [] } = await client.send(new ListQueuesCommand({ QueueNamePrefix: prefix }));
    await Promise.all(QueueUrls.map((url) => client.send(new DeleteQueueCommand({ QueueUrl: url }))));
    return QueueUrls.length;
  } finally {
    client.destroy();
  }
}
