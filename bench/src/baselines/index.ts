import type { Rates } from '../measure';
import { amqpRaw } from './amqp-raw';
import { bullmqRates } from './bullmq';
import { kafkaRaw } from './kafka-raw';
import { naiveSkipLockedLoop } from './mysql-naive';
import { rawRedisList, rawRedisReliable, rawRedisStreams } from './redis-raw';
import { sqliteRaw } from './sqlite-raw';
import { sqsRaw } from './sqs-raw';

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

/*
 * Add a broker's baselines here: each one a module of ./ issuing the same commands as the
 * driver with the broker's own client. Keep labels short; they are table rows in docs/benchmarks.md.
 */

/**
 * What each BROKER is compared against in the same run. A driver's baseline issues the same
 * commands with the broker's client and nothing else, so the ratio shows polyqueue's overhead.
 */
export const baselines: Record<string, Baseline[]> = {
  sqlite: [{ label: 'raw better-sqlite3, same SQL', run: sqliteRaw }],
  'redis-list': [
    { label: 'BullMQ (removeOnComplete)', run: bullmqRates },
    { label: 'raw ioredis, same commands', run: rawRedisList },
  ],
  'redis-reliable': [
    { label: 'BullMQ (removeOnComplete)', run: bullmqRates },
    { label: 'raw ioredis, same commands', run: rawRedisReliable },
  ],
  'redis-streams': [
    { label: 'BullMQ (removeOnComplete)', run: bullmqRates },
    { label: 'raw ioredis, same commands', run: rawRedisStreams },
  ],
  rabbitmq: [{ label: 'raw amqplib, same confirm window and prefetch', run: amqpRaw }],
  kafka: [{ label: 'raw kafkajs, same batch and partitions', run: kafkaRaw }],
  sqs: [{ label: 'raw client-sqs, same batch sizes', run: sqsRaw }],
  mysql: [
    {
      label: 'naive SKIP LOCKED loop, one row per transaction',
      run: async (o) => ({
        enqueuePerSec: Number.NaN, // it inserts with multi-row statements; only processing is compared
        processPerSec: (
          await naiveSkipLockedLoop({
            url: o.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
            jobs: o.jobs,
          })
        ).jobsPerSec,
      }),
    },
  ],
};
