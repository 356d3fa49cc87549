/**
 * BullMQ on the same Redis, as the Redis drivers' competitor (a bench-only dependency): the same
 * jobs (createEnvelope('bench_job', { i }) as the job data), published with Queue.addBulk in
 * chunks of `batch`, processed by one Worker at `concurrency` with an async no-op processor.
 *
 * Jobs are added with removeOnComplete and removeOnFail: BullMQ then deletes each job's hash
 * when it finishes instead of keeping it in the completed set, which is its fastest setting (and
 * the closest to the drivers, which keep nothing of an acked job).
 *
 * Timed like the framework run: the enqueue phase alone, then from the worker's start until
 * every job has completed (counted on the worker's 'completed' event, which BullMQ emits after
 * the job was moved to completed, i.e. acked). A fresh queue per run, obliterated afterwards.
 */
import { randomUUID } from 'node:crypto';
import { createEnvelope } from '@polyqueue/core';
import { type JobsOptions, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Countdown, perSecond, type Rates } from '../measure';
import type { BaselineOptions } from './index';

// BullMQ's fastest setting: no job hash kept after it finished (see the header).
const JOB_OPTIONS: JobsOptions = { removeOnComplete: true, removeOnFail: true };

export async function bullmqRates(options: BaselineOptions): Promise<Rates> {
  const url = options.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const name = `bullbench${Date.now().toString(36)}${randomUUID().slice(0, 4)}`;
  // A worker's connection must not give commands up (BullMQ requires maxRetriesPerRequest null);
  // shared connections are not closed by BullMQ, so they are closed below.
  const queueConnection = new Redis(url, { maxRetriesPerRequest: null });
  const workerConnection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: queueConnection });
  let worker: Worker | undefined;
  try {
    await queue.waitUntilReady();
    const envelopes = Array.from({ length: options.jobs }, (_, i) => createEnvelope('bench_job', { i }));
    const t0 = performance.now();
    for (let i = 0; i < envelopes.length; i += options.batch) {
      await queue.addBulk(
        envelopes
          .slice(i, i + options.batch)
          .map((envelope) => ({ name: 'bench_job', data: envelope, opts: JOB_OPTIONS })),
      );
    }
    const enqueuePerSec = perSecond(options.jobs, t0);

    const countdown = new Countdown(options.jobs);
    let failed: Error | undefined;
    const t1 = performance.now();
    worker = new Worker(name, async () => {}, {
      connection: workerConnection,
      concurrency: options.concurrency,
    });
    worker.on('completed', () => countdown.tick());
    worker.on('failed', (_job, error) => {
      failed ??= error;
    });
    await Promise.race([countdown.finished, new Promise<never>((_, reject) => worker!.on('error', reject))]);
    const processPerSec = perSecond(options.jobs, t1);
    if (failed) throw new Error(`a BullMQ bench job failed: ${failed.message}`);
    return { enqueuePerSec, processPerSec };
  } finally {
    await worker?.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    await Promise.all([queueConnection.quit(), workerConnection.quit()]);
  }
}
