import { createEnvelope, MemoryMetricsHistory, MINUTE_MS, minuteOf, silentLogger } from '@polyqueue/core';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createJobRecorder } from '../src/job-recorder';
import { MemoryStateStore } from '../src/memory-state-store';
import { startOutcomeHistory } from '../src/outcome-history';

describe('startOutcomeHistory through the job recorder', () => {
  it('counts succeeded as completed, retrying and dead as failed, and a first attempt’s wait', async () => {
    const store = new MemoryMetricsHistory();
    const registry = new Registry();
    const history = await startOutcomeHistory({
      stateUrl: 'unused:',
      env: {},
      logger: silentLogger(),
      registry,
      history: store,
    });
    const record = createJobRecorder({
      state: new MemoryStateStore(),
      broker: { publishEvent: async () => {} },
      history,
    });
    const created = new Date(Date.now() - 90_000);
    const envelope = createEnvelope('send_email', {}, { id: 'j1', now: created });
    const base = { envelope, messageId: 'm1', queue: 'email' };
    await record({ ...base, outcome: 'processing', attempt: 1 });
    await record({ ...base, outcome: 'retrying', attempt: 1, error: 'SMTP 451' });
    // A retry's createdAt is the first one's: it adds no wait.
    await record({ ...base, outcome: 'processing', attempt: 2 });
    await record({ ...base, outcome: 'dead', attempt: 2, error: 'SMTP 550' });
    await record({ ...base, envelope: createEnvelope('send_email', {}), outcome: 'succeeded', attempt: 1 });
    await record({ ...base, outcome: 'cancelled', attempt: 1 });
    await record({ ...base, outcome: 'skipped_duplicate', attempt: 3 });
    await history.stop();

    const now = minuteOf(Date.now());
    // The test may straddle a minute's end: add its minutes up.
    const minutes = await store.read('email', now - 2 * MINUTE_MS, now + MINUTE_MS);
    const sum = (key: 'completed' | 'failed') => minutes.reduce((n, m) => n + m[key], 0);
    expect([sum('completed'), sum('failed')]).toEqual([1, 2]);
    const wait = Math.max(...minutes.map((m) => m.oldestWaitMs ?? 0));
    expect(wait).toBeGreaterThanOrEqual(90_000);
    expect(wait).toBeLessThan(90_000 + MINUTE_MS);
    const metric = await registry.getSingleMetricAsString('polyqueue_job_wait_max_seconds');
    // 90 s and the milliseconds the test took to get there ("90" when they were none).
    const seconds = Number(/polyqueue_job_wait_max_seconds\{queue="email"\} ([\d.]+)/.exec(metric)?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(90);
    expect(seconds).toBeLessThan(100);
  });
});
