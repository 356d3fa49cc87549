/**
 * Throughput with 1, 2, 4 ... worker processes on one queue (docs/scaling.md):
 *
 *   npx tsx bench/src/scale-out.ts --broker redis-streams --workers 1,2,4 --jobs 20000
 *
 * For each worker count: publish `jobs` no-op jobs to a fresh queue, start that many consumer
 * processes (each `--concurrency` jobs at once, acking at once: the broker's and the driver's
 * cost, no handler work), and once all of them are attached (a Kafka group has rebalanced),
 * time how fast the jobs still queued at that moment drain. The first workers start before the
 * last are attached, so the rate counts only what is left then (printed as `timed`); too few
 * left means the run needs more jobs. Broker
 * variables (REDIS_URL, REDIS_CLUSTER_NODES, KAFKA_BROKERS, AMQP_URL ...) come from the
 * environment, so one script measures a single node and a cluster alike. Prints a markdown row
 * per worker count.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import { createEnvelope, type QueueStats } from '@polyqueue/core';

const { values } = parseArgs({
  options: {
    broker: { type: 'string', default: process.env.BROKER ?? 'redis-streams' },
    workers: { type: 'string', default: '1,2,4' },
    jobs: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '16' },
    child: { type: 'string' },
    label: { type: 'string', default: '' },
  },
});
const env = { ...process.env, BROKER: values.broker! };
const concurrency = Number(values.concurrency);

if (values.child) await child(values.child);
else await parent();

/** One worker process: consume until told to stop, report how many it handled. */
async function child(queue: string): Promise<void> {
  const broker = await createBrokerFromEnv(env);
  const controller = new AbortController();
  let handled = 0;
  process.on('message', () => controller.abort());
  const done = broker.consume(
    queue,
    async (delivery) => {
      await delivery.ack();
      handled += 1;
    },
    { concurrency, signal: controller.signal, onReady: () => process.send?.({ ready: true }) },
  );
  await done;
  process.send?.({ handled });
  await broker.close();
  process.exit(0);
}

async function parent(): Promise<void> {
  const jobs = Number(values.jobs);
  const counts = values.workers!.split(',').map(Number);
  const broker = await createBrokerFromEnv(env);
  const admin = broker as unknown as { stats(queue: string): Promise<QueueStats> };
  const rows: string[] = [];
  for (const workers of counts) {
    const queue = `scale${workers}x${Date.now().toString(36)}`;
    const envelopes = Array.from({ length: jobs }, (_, i) => createEnvelope('bench_job', { i }));
    for (let i = 0; i < jobs; i += 500)
      await broker.publish(
        queue,
        envelopes.slice(i, i + 500).map((envelope) => ({ envelope })),
      );
    const children = Array.from({ length: workers }, () =>
      fork(
        fileURLToPath(import.meta.url),
        ['--child', queue, '--broker', values.broker!, '--concurrency', String(concurrency)],
        {
          execArgv: ['--import', 'tsx'],
          env,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        },
      ),
    );
    const handled: number[] = [];
    const finished = children.map(
      (c) =>
        new Promise<void>((resolve) => {
          c.on('message', (m: { handled?: number }) => {
            if (m.handled !== undefined) handled.push(m.handled);
          });
          c.on('exit', () => resolve());
        }),
    );
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => c.on('message', (m: { ready?: boolean }) => m.ready && resolve())),
      ),
    );
    const atStart = await admin.stats(queue);
    const timed = atStart.ready + atStart.inFlight;
    const t0 = performance.now();
    const deadline = Date.now() + 600_000;
    for (;;) {
      const s = await admin.stats(queue);
      if (s.ready === 0 && s.inFlight === 0 && s.delayed === 0) break;
      if (Date.now() > deadline)
        throw new Error(`queue ${queue} not drained within 10 min: ${JSON.stringify(s)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const c of children) c.send('stop');
    await Promise.all(finished);
    const total = handled.reduce((a, b) => a + b, 0);
    rows.push(
      `| ${values.broker}${values.label ? ` (${values.label})` : ''} | ${workers} | ${jobs} | ${timed} | ${Math.round(timed / seconds)} | ${total} |`,
    );
    process.stderr.write(`${rows.at(-1)}\n`);
  }
  await broker.close();
  console.log('| broker | worker processes | jobs | timed | jobs/s | handled |\n|---|---|---|---|---|---|');
  console.log(rows.join('\n'));
}
