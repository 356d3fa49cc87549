import type { Rates } from '../measure';

export interface BaselineOptions {
  env: Record<string, string | undefined>;
  jobs: number;
  concurrency: number;
  batch: number;
}

/**
 * What a row is, for --json and the ratio columns: 'raw-same' issues the driver's own commands,
 * 'raw-best' is the fastest correct at-least-once loop the client allows (<broker>-best.ts).
 */
export type ContenderKind = 'polyqueue' | 'driver' | 'raw-same' | 'raw-best' | 'bullmq';

export interface Baseline {
  /** Row label in the table, e.g. "raw better-sqlite3, same SQL". */
  label: string;
  kind: ContenderKind;
  run(options: BaselineOptions): Promise<Rates>;
}

/**
 * What each BROKER is compared against in the same run. A 'raw-same' baseline issues the same
 * commands with the broker's own client and nothing else, so the ratio shows polyqueue's
 * overhead; the 'raw-best' one batches and pipelines as far as the client allows while staying
 * at-least-once, so the ratio shows what the driver's design leaves on the table. Each module is imported only when its broker is benched, so a bench run loads one
 * client library. Keep labels short: they are table rows in docs/benchmarks.md.
 */
export const baselines: Record<string, Baseline[]> = {
  sqlite: [
    {
      label: 'raw better-sqlite3, same SQL',
      kind: 'raw-same',
      run: async (o) => (await import('./sqlite-raw')).sqliteRaw(o),
    },
    {
      label: 'best raw better-sqlite3: ack + claim 100 per commit',
      kind: 'raw-best',
      run: async (o) => (await import('./sqlite-best')).bestSqlite(o),
    },
  ],
  'redis-list': [
    {
      label: 'BullMQ (removeOnComplete)',
      kind: 'bullmq',
      run: async (o) => (await import('./bullmq')).bullmqRates(o),
    },
    {
      label: 'raw ioredis, same commands',
      kind: 'raw-same',
      run: async (o) => (await import('./redis-raw')).rawRedisList(o),
    },
    {
      label: 'best raw ioredis: LPOP 100',
      kind: 'raw-best',
      run: async (o) => (await import('./redis-list-best')).bestRedisList(o),
    },
  ],
  'redis-reliable': [
    {
      label: 'BullMQ (removeOnComplete)',
      kind: 'bullmq',
      run: async (o) => (await import('./bullmq')).bullmqRates(o),
    },
    {
      label: 'raw ioredis, same commands',
      kind: 'raw-same',
      run: async (o) => (await import('./redis-raw')).rawRedisReliable(o),
    },
    {
      label: 'best raw ioredis: Lua LMOVE x100 + Lua LREM batch',
      kind: 'raw-best',
      run: async (o) => (await import('./redis-reliable-best')).bestRedisReliable(o),
    },
  ],
  'redis-streams': [
    {
      label: 'BullMQ (removeOnComplete)',
      kind: 'bullmq',
      run: async (o) => (await import('./bullmq')).bullmqRates(o),
    },
    {
      label: 'raw ioredis, same commands',
      kind: 'raw-same',
      run: async (o) => (await import('./redis-raw')).rawRedisStreams(o),
    },
    {
      label: 'best raw ioredis: XREADGROUP 100 + one XACK',
      kind: 'raw-best',
      run: async (o) => (await import('./redis-streams-best')).bestRedisStreams(o),
    },
  ],
  rabbitmq: [
    {
      label: 'raw amqplib, same confirm window and prefetch',
      kind: 'raw-same',
      run: async (o) => (await import('./amqp-raw')).amqpRaw(o),
    },
    {
      label: 'best raw amqplib: confirm window 5000, prefetch 500, ack multiple',
      kind: 'raw-best',
      run: async (o) => (await import('./rabbitmq-best')).bestRabbitmq(o),
    },
  ],
  kafka: [
    {
      label: 'raw kafkajs, same batch and partitions',
      kind: 'raw-same',
      run: async (o) => (await import('./kafka-raw')).kafkaRaw(o),
    },
    {
      label: 'best raw kafkajs: sendBatch 1000, one commit per batch',
      kind: 'raw-best',
      run: async (o) => (await import('./kafka-best')).bestKafka(o),
    },
  ],
  sqs: [
    {
      label: 'raw client-sqs, same batch sizes',
      kind: 'raw-same',
      run: async (o) => (await import('./sqs-raw')).sqsRaw(o),
    },
    {
      label: 'best raw client-sqs: 32 sends, 8 pollers, delete batch',
      kind: 'raw-best',
      run: async (o) => (await import('./sqs-best')).bestSqs(o),
    },
  ],
  mysql: [
    {
      label: 'naive SKIP LOCKED loop, one row per transaction',
      kind: 'raw-same',
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
    {
      label: 'best raw mysql2: SKIP LOCKED 100 + one DELETE, 4 connections',
      kind: 'raw-best',
      run: async (o) => (await import('./mysql-best')).bestMysql(o),
    },
  ],
};
