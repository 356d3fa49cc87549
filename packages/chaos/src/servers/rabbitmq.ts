/**
 * rabbitmq: the shared local broker; restart = `rabbitmqctl stop_app && start_app` (as the
 * conformance suite does). Queues have the run's prefix and are deleted at the end.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { BrokerContext, BrokerServer } from './types';
import { portOpen, untilPortOpen } from './wait';

const run = promisify(execFile);

export async function rabbitmq(ctx: BrokerContext): Promise<BrokerServer> {
  const ctl = (...args: string[]) => run('rabbitmqctl', args, { timeout: 120_000 });
  const ensureRunning = async () => {
    await ctl('start_app');
    await ctl('await_startup');
    await untilPortOpen(5672, 'RabbitMQ');
  };
  if (!(await portOpen(5672)))
    throw new Error('RabbitMQ is not answering on 127.0.0.1:5672 (start: rabbitmq-server -detached)');
  return {
    name: 'rabbitmq',
    atLeastOnce: true,
    // No broker lease: a consumer's unacked messages return as soon as its connection closes (a
    // SIGKILL closes it at once); the AMQP heartbeat bounds it for a silent network. What holds a
    // returned job back is the dead worker's idempotency claim, leased for JOB_LEASE_MS (default
    // 30 s): the run sets it to the run's lease.
    leaseMs: ctx.leaseMs,
    leaseIs: 'JOB_LEASE_MS, the idempotency claim (unacked messages return when the connection closes)',
    env: {
      JOB_LEASE_MS: String(ctx.leaseMs),
      BROKER: 'rabbitmq',
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
      POLYQUEUE_PREFIX: ctx.prefix,
    },
    restart: async () => {
      try {
        await ctl('stop_app');
      } finally {
        await ensureRunning();
      }
    },
    notes: ['shared server, rabbitmqctl stop_app/start_app'],
    teardown: async () => {
      await ensureRunning();
      const { stdout } = await ctl('list_queues', '--quiet', '--no-table-headers', 'name');
      const names = stdout
        .split('\n')
        .map((line) => line.trim())
        .filter((queue) => queue.startsWith(`${ctx.prefix}.`));
      for (const queue of names) await ctl('delete_queue', queue).catch(() => {});
    },
    emergencyStop: () => {
      try {
        execFileSync('rabbitmqctl', ['start_app'], { timeout: 60_000, stdio: 'ignore' });
      } catch {
        // reported by the next run's precheck
      }
    },
  };
}
