import { describe, expect, it } from 'vitest';
import {
  HistoryTally,
  MemoryMetricsHistory,
  type MetricsHistory,
  MINUTE_MS,
  type MinuteSample,
} from '../src/metrics-history';

/** A history that records each record() call, and can be made to fail. */
class CountingHistory extends MemoryMetricsHistory {
  calls: MinuteSample[][] = [];
  failing = false;
  override async record(samples: readonly MinuteSample[]): Promise<void> {
    if (this.failing) throw new Error('state store down');
    this.calls.push([...samples]);
    await super.record(samples);
  }
}

describe('HistoryTally', () => {
  const t0 = 1_800_000_000_000 - (1_800_000_000_000 % MINUTE_MS);

  it('adds a minute of outcomes in memory and writes them in one record() per flush', async () => {
    let now = t0 + 1_000;
    const history = new CountingHistory();
    const tally = new HistoryTally(history, { flushMs: 3_600_000, now: () => now });
    for (let i = 0; i < 50; i++) tally.completed('email');
    tally.failed('email');
    tally.failed('image');
    tally.waited('email', new Date(now - 4_000).toISOString());
    tally.waited('email', new Date(now - 2_500).toISOString());
    now += MINUTE_MS;
    tally.completed('email');
    await tally.flush();
    expect(history.calls).toHaveLength(1);
    expect(await history.read('email', t0, t0 + 2 * MINUTE_MS)).toEqual([
      { queue: 'email', minute: t0, completed: 50, failed: 1, oldestWaitMs: 4_000 },
      { queue: 'email', minute: t0 + MINUTE_MS, completed: 1, failed: 0, oldestWaitMs: null },
    ]);
    await tally.flush();
    expect(history.calls).toHaveLength(1);
    await tally.stop();
  });

  it('keeps the counts of a failed flush for the next one, and stop() flushes what is left', async () => {
    const history = new CountingHistory();
    const errors: unknown[] = [];
    const tally = new HistoryTally(history, {
      flushMs: 3_600_000,
      now: () => t0,
      onError: (e) => errors.push(e),
    });
    tally.completed('email');
    history.failing = true;
    await tally.flush();
    expect(errors).toHaveLength(1);
    history.failing = false;
    tally.completed('email');
    await tally.stop();
    expect(await history.read('email', t0, t0 + MINUTE_MS)).toEqual([
      { queue: 'email', minute: t0, completed: 2, failed: 0, oldestWaitMs: null },
    ]);
  });

  it('prunes what is older than the retention, at most every ten minutes', async () => {
    const pruned: number[] = [];
    const history: MetricsHistory = Object.assign(new MemoryMetricsHistory(), {
      prune: async (before: number) => void pruned.push(before),
    });
    let now = t0;
    const tally = new HistoryTally(history, { flushMs: 3_600_000, now: () => now });
    await tally.flush();
    now += MINUTE_MS;
    await tally.flush();
    now += 10 * MINUTE_MS;
    await tally.stop();
    expect(pruned).toEqual([t0 - 48 * 3_600_000, t0 + 11 * MINUTE_MS - 48 * 3_600_000]);
  });
});
