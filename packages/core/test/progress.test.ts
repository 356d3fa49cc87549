import { describe, expect, it } from 'vitest';
import type { Broker, Delivery, DeliveryHandler } from '../src/broker';
import { createEnvelope, encodeEnvelope } from '../src/envelope';
import { MemoryIdempotencyStore } from '../src/idempotency';
import type { JobContext } from '../src/job-handler';
import { silentLogger } from '../src/logger';
import { ProgressWriter, toProgress } from '../src/progress';
import type { JobPatch, JobProgress, JobRecord } from '../src/state';
import { createWorker, type WorkerOptions } from '../src/worker';

/** Job records that log what is written to them, in order, beside the worker's outcomes. */
function recordingJobs(fail?: Error) {
  const log: string[] = [];
  const written: JobProgress[] = [];
  return {
    log,
    written,
    jobs: {
      getJob: async (): Promise<JobRecord | undefined> => undefined,
      updateJob: async (_id: string, patch: JobPatch) => {
        if (fail) throw fail;
        if (patch.progress) {
          written.push(patch.progress);
          log.push(`progress ${patch.progress.percent}`);
        }
        return true;
      },
    },
  };
}

/** Runs one job through the worker runtime and resolves once it is acked. */
async function runJob(handle: (context: JobContext) => Promise<unknown>, options: Partial<WorkerOptions>) {
  let acked!: () => void;
  const done = new Promise<void>((resolve) => {
    acked = resolve;
  });
  const delivery: Delivery = {
    messageId: 'm1',
    body: encodeEnvelope(createEnvelope('report', {})),
    attempt: 1,
    ack: async () => acked(),
    retry: async () => {},
    deadLetter: async () => {},
    extend: async () => {},
  };
  const broker = {
    capabilities: { leaseExtension: false },
    consume: async (_q: string, handler: DeliveryHandler, o: { onReady?: () => void }) => {
      o.onReady?.();
      await handler(delivery);
    },
  } as unknown as Broker;
  const worker = createWorker({
    broker,
    queue: 'reports',
    idempotency: new MemoryIdempotencyStore(),
    handlers: { report: { handle: (_p, context) => handle(context) } },
    ...options,
  });
  await worker.run(new AbortController().signal);
  await done;
}

describe('context.progress', () => {
  it('a chatty handler costs few writes, and its last value is written before the outcome', async () => {
    const { jobs, log, written } = recordingJobs();
    await runJob(
      async (context) => {
        for (let i = 1; i <= 200; i++) await context.progress(i / 2, `step ${i} of 200`);
      },
      { jobs, onOutcome: (e) => void log.push(e.outcome) },
    );
    // The first report is written at once, the rest coalesce into the last one.
    expect(written.length).toBeLessThan(20);
    expect(written.at(-1)).toMatchObject({ percent: 100, message: 'step 200 of 200' });
    expect(log.at(-1)).toBe('succeeded');
    expect(log.indexOf('progress 100')).toBeLessThan(log.indexOf('succeeded'));
  });

  it('a store that fails the write does not fail the job', async () => {
    const { jobs, log } = recordingJobs(new Error('state store down'));
    await runJob(
      async (context) => {
        await context.progress(50);
        return 'ok';
      },
      { jobs, onOutcome: (e) => void log.push(e.outcome) },
    );
    expect(log).toEqual(['processing', 'succeeded']);
  });

  it('without job records, progress is accepted and goes nowhere', async () => {
    const outcomes: string[] = [];
    await runJob(async (context) => context.progress(10, 'x'), {
      onOutcome: (e) => void outcomes.push(e.outcome),
    });
    expect(outcomes).toEqual(['processing', 'succeeded']);
  });

  it('clamps a percent outside 0..100 and refuses one that is not a finite number, at once', () => {
    const now = new Date();
    expect(toProgress(100.0001, undefined, now)).toEqual({ percent: 100, at: now.toISOString() });
    expect(toProgress(-3, 'm', now)).toEqual({ percent: 0, message: 'm', at: now.toISOString() });
    expect(() => toProgress(Number.NaN, undefined, now)).toThrow(RangeError);
    expect(() => toProgress(Number.POSITIVE_INFINITY, undefined, now)).toThrow(/finite number from 0 to 100/);
    expect(toProgress(5, 'x'.repeat(2_000), now).message).toHaveLength(500);
  });

  it('writes one value per interval: the first at once, then only the latest; end() writes what is left', async () => {
    const { jobs, written } = recordingJobs();
    // An interval no test run reaches, so nothing but end() can write the later values.
    const writer = new ProgressWriter('j1', jobs, silentLogger(), 3_600_000);
    const at = new Date().toISOString();
    for (const percent of [10, 20, 30]) writer.report({ percent, at });
    await writer.end();
    expect(written.map((p) => p.percent)).toEqual([10, 30]);
    writer.report({ percent: 40, at }); // after the job: dropped
    await writer.end();
    expect(written.map((p) => p.percent)).toEqual([10, 30]);
  });
});
