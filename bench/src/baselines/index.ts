import type { Rates } from '../measure';

export interface BaselineOptions {
  env: Record<string, string | undefined>;
  jobs: number;
  concurrency: number;
  batch: number;
}

export interface Baseline {
  /** Row label in the table, e.g. "raw better-sqlite3, same SQL". */
  label: string;
  run(options: BaselineOptions): Promise<Rates>;
}

/**
 * What each BROKER is compared against in the same run. A driver's baseline issues the same
 * commands with the broker's own client and nothing else, so the ratio shows polyqueue's
 * overhead. Each module is imported only when its broker is benched, so a bench run loads one
 * client library. Keep labels short: they are table rows in docs/benchmarks.md.
 */
export const baselines: Record<string, Baseline[]> = {
  sqlite: [
    { label: 'raw better-sqlite3, same SQL', run: async (o) => (await import('./sqlite-raw')).sqliteRaw(o) },
  ],
  'redis-list': [
    { label: 'BullMQ (removeOnComplete)', run: async (o) => (await import('./bullmq')).bullmqRates(o) },
    { label: 'raw ioredis, same commands', run: async (o) => (await import('./redis-raw')).rawRedisList(o) },
  ],
  'redis-reliable': [
    { label: 'BullMQ (removeOnComplete)', run: async (o) => (await import('./bullmq')).bullmqRates(o) },
    {
      label: 'raw ioredis, same commands',
      run: async (o) => (await import('./redis-raw')).rawRedisReliable(o),
    },
  ],
  'redis-streams': [
    { label: 'BullMQ (removeOnComplete)', run: async (o) => (await import('./bullmq')).bullmqRates(o) },
    {
      label: 'raw ioredis, same commands',
      run: async (o) => (await import('./redis-raw')).rawRedisStreams(o),
    },
  ],
  rabbitmq: [
    {
      label: 'raw amqplib, same confirm window and prefetch',
      run: async (o) => (await import('./amqp-raw')).amqpRaw(o),
    },
  ],
  kafka: [
    {
      label: 'raw kafkajs, same batch and partitions',
      run: async (o) => (await import('./kafka-raw')).kafkaRaw(o),
    },
  ],
  sqs: [
    { label: 'raw client-sqs, same batch sizes', run: async (o) => (await import('./sqs-raw')).sqsRaw(o) },
  ],
  mysql: [
    {
      label: 'naive SKIP LOCKED loop, one row per transaction',
      run: async (o) => {
        const { naiveSkipLockedLoop } = await import('./mysql-naive');
        const url = o.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
        // It inserts with multi-row statements; only processing is compared.
        return {
          enqueuePerSec: Number.NaN,
          processPerSec: (await naiveSkipLockedLoop({ url, jobs: o.jobs })).jobsPerSec,
        };
      },
    },
  ],
};
