/**
 * The settle batcher alone, with a send whose reply the test releases: what goes out together,
 * when each settle's promise settles, and how failures reach the jobs of a batch.
 */
import { describe, expect, it } from 'vitest';
import { type SettleArgs, SettleBatcher } from '../src/settle-batcher';

interface Call {
  jobs: readonly SettleArgs[];
  answer: (reply: unknown) => void;
  fail: (error: Error) => void;
}

/** A batcher whose every send is recorded and waits until the test answers it. */
function controlled(maxBatch?: number) {
  const calls: Call[] = [];
  const batcher = new SettleBatcher(
    (jobs) =>
      new Promise((answer, fail) => {
        calls.push({ jobs, answer, fail });
      }),
    maxBatch,
  );
  return { calls, batcher };
}

/** Lets queued microtasks and promise reactions run. */
const settleMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Tracks whether a promise has settled yet, and how. */
function track<T>(promise: Promise<T>) {
  const state: { done: boolean; value?: T; error?: Error } = { done: false };
  promise.then(
    (value) => Object.assign(state, { done: true, value }),
    (error: Error) => Object.assign(state, { done: true, error }),
  );
  return state;
}

describe('SettleBatcher', () => {
  it('sends a lone settle at once, without waiting for a timer', async () => {
    const { calls, batcher } = controlled();
    const ack = track(batcher.settle(['1-0', 'ack']));
    await settleMicrotasks();
    expect(calls.map((c) => c.jobs)).toEqual([[['1-0', 'ack']]]);
    expect(ack.done).toBe(false);
    calls[0]!.answer([1]);
    await settleMicrotasks();
    expect(ack).toEqual({ done: true, value: 1 });
  });

  it('queues the settles asked for while a batch is in flight and sends them as one next batch', async () => {
    const { calls, batcher } = controlled();
    const first = track(batcher.settle(['a', 'ack']));
    await settleMicrotasks();
    const rest = Array.from({ length: 199 }, (_, i) => track(batcher.settle([`b${i}`, 'ack'])));
    await settleMicrotasks();
    // One batch in flight: nothing more goes out until it is answered.
    expect(calls).toHaveLength(1);
    calls[0]!.answer([1]);
    await settleMicrotasks();
    expect(first.value).toBe(1);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.jobs).toHaveLength(199);
    // Each settle resolves with its own batch's reply, not before.
    expect(rest.some((s) => s.done)).toBe(false);
    calls[1]!.answer(rest.map((_, i) => (i === 5 ? 0 : 1)));
    await settleMicrotasks();
    expect(rest.every((s) => s.done && s.error === undefined)).toBe(true);
    expect(rest[5]!.value).toBe(0);
    expect(rest[6]!.value).toBe(1);
  });

  it('rejects every settle of a batch that failed, and keeps sending the next ones', async () => {
    const { calls, batcher } = controlled();
    const a = track(batcher.settle(['a', 'ack']));
    const b = track(batcher.settle(['b', 'ack']));
    await settleMicrotasks();
    expect(calls[0]!.jobs).toHaveLength(2);
    const c = track(batcher.settle(['c', 'ack']));
    calls[0]!.fail(new Error('connection lost'));
    await settleMicrotasks();
    expect(a.error?.message).toBe('connection lost');
    expect(b.error?.message).toBe('connection lost');
    expect(c.done).toBe(false);
    expect(calls[1]!.jobs).toEqual([['c', 'ack']]);
    calls[1]!.answer([1]);
    await settleMicrotasks();
    expect(c.value).toBe(1);
  });

  it('rejects only the job whose part of the script failed', async () => {
    const { calls, batcher } = controlled();
    const ok = track(batcher.settle(['a', 'ack']));
    const bad = track(batcher.settle(['b', 'dead', 'id', 'body', 'why', 'now']));
    await settleMicrotasks();
    calls[0]!.answer([1, 'WRONGTYPE Operation against a key holding the wrong kind of value']);
    await settleMicrotasks();
    expect(ok.value).toBe(1);
    expect(bad.error?.message).toMatch(/^WRONGTYPE/);
  });

  it('rejects the whole batch when the reply does not have one entry per job', async () => {
    const { calls, batcher } = controlled();
    const a = track(batcher.settle(['a', 'ack']));
    const b = track(batcher.settle(['b', 'ack']));
    await settleMicrotasks();
    calls[0]!.answer([1]);
    await settleMicrotasks();
    expect(a.error?.message).toMatch(/batch of 2 jobs/);
    expect(b.error?.message).toMatch(/batch of 2 jobs/);
  });

  it('caps a batch, sending the rest as the next one', async () => {
    const { calls, batcher } = controlled(3);
    const all = Array.from({ length: 5 }, (_, i) => track(batcher.settle([`${i}`, 'ack'])));
    await settleMicrotasks();
    expect(calls[0]!.jobs).toHaveLength(3);
    calls[0]!.answer([1, 1, 1]);
    await settleMicrotasks();
    expect(calls[1]!.jobs).toHaveLength(2);
    calls[1]!.answer([1, 1]);
    await settleMicrotasks();
    expect(all.every((s) => s.value === 1)).toBe(true);
  });

  it('is idle only once every settle asked for has been answered', async () => {
    const { calls, batcher } = controlled();
    await batcher.idle();
    void batcher.settle(['a', 'ack']);
    await settleMicrotasks();
    void batcher.settle(['b', 'ack']);
    const idle = track(batcher.idle());
    calls[0]!.answer([1]);
    await settleMicrotasks();
    expect(idle.done).toBe(false);
    calls[1]!.answer([1]);
    await settleMicrotasks();
    expect(idle.done).toBe(true);
  });
});
