import { randomUUID } from 'node:crypto';
import { HISTORY_RETENTION_MS, type MetricsHistory, MINUTE_MS, minuteOf } from '@polyqueue/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The contract every MetricsHistory (sqlite, redis, mysql, memory) must keep. */
export function runMetricsHistorySuite(name: string, create: () => Promise<MetricsHistory>): void {
  describe(`metrics history: ${name}`, () => {
    let history: MetricsHistory;
    beforeAll(async () => {
      history = await create();
    }, 30_000);
    afterAll(async () => {
      await history?.close();
    });

    // Queue names of this run only: a shared server may hold other runs' minutes.
    const queue = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;
    const now = minuteOf(Date.now());

    it('adds counts of several writers per minute, keeps the greatest wait, reads a range in order', async () => {
      const q = queue('email');
      const other = queue('image');
      const m0 = now - 2 * MINUTE_MS;
      const m1 = now - MINUTE_MS;
      await history.record([
        { queue: q, minute: m1, completed: 2, failed: 1, oldestWaitMs: 700 },
        { queue: q, minute: m0, completed: 1, failed: 0, oldestWaitMs: null },
        { queue: other, minute: m1, completed: 9, failed: 9, oldestWaitMs: 9_999 },
      ]);
      // A second writer (another replica) on the same minutes.
      await history.record([
        { queue: q, minute: m1, completed: 3, failed: 0, oldestWaitMs: 300 },
        { queue: q, minute: m0, completed: 0, failed: 2, oldestWaitMs: 1_500 },
        { queue: q, minute: now, completed: 0, failed: 0, oldestWaitMs: 42 },
      ]);
      expect(await history.read(q, m0, now + MINUTE_MS)).toEqual([
        { queue: q, minute: m0, completed: 1, failed: 2, oldestWaitMs: 1_500 },
        { queue: q, minute: m1, completed: 5, failed: 1, oldestWaitMs: 700 },
        { queue: q, minute: now, completed: 0, failed: 0, oldestWaitMs: 42 },
      ]);
      // [from, to): the end is left out.
      expect((await history.read(q, m1, now)).map((s) => s.minute)).toEqual([m1]);
      expect(await history.read(queue('none'), m0, now + MINUTE_MS)).toEqual([]);
      await history.record([]);
    });

    it('forgets minutes older than the retention once pruned, keeps the recent ones', async () => {
      const q = queue('email');
      const old = minuteOf(now - HISTORY_RETENTION_MS - 60 * MINUTE_MS);
      const kept = now - 5 * MINUTE_MS;
      await history.record([
        { queue: q, minute: old, completed: 4, failed: 4, oldestWaitMs: 4 },
        { queue: q, minute: kept, completed: 1, failed: 0, oldestWaitMs: 10 },
      ]);
      await history.prune(Date.now() - HISTORY_RETENTION_MS);
      expect(await history.read(q, old - MINUTE_MS, now + MINUTE_MS)).toEqual([
        { queue: q, minute: kept, completed: 1, failed: 0, oldestWaitMs: 10 },
      ]);
    });
  });
}
