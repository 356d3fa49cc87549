import { describe, expect, it } from 'vitest';
import type { Delivery } from '../src/broker';
import { type PullLoopOptions, runPullLoop } from '../src/pull-loop';

function delivery(id: string): Delivery {
  return {
    messageId: id,
    body: '{}',
    attempt: 1,
    ack: async () => {},
    retry: async () => {},
    deadLetter: async () => {},
    extend: async () => {},
  };
}

/** A handler whose runs the test finishes one by one. */
function gatedHandler() {
  const started: string[] = [];
  const gates: Array<() => void> = [];
  let onStart: (() => void) | undefined;
  return {
    started,
    finishOne: () => gates.shift()?.(),
    finishAll: () => {
      for (const g of gates.splice(0)) g();
    },
    /** Resolves once `n` handlers have started. */
    startedCount: (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (started.length >= n) resolve();
          else onStart = check;
        };
        check();
      }),
    handler: (d: Delivery) =>
      new Promise<void>((resolve) => {
        started.push(d.messageId);
        gates.push(resolve);
        onStart?.();
      }),
  };
}

const fastBackoff = { baseMs: 1, maxMs: 2 };

/** A loop with a gated handler, one slot and a fast backoff unless `options` say otherwise. */
function startLoop(options: Partial<PullLoopOptions> & Pick<PullLoopOptions, 'fetch'>) {
  const abort = new AbortController();
  const h = gatedHandler();
  const done = runPullLoop({
    concurrency: 1,
    what: 'test',
    backoff: fastBackoff,
    handler: h.handler,
    ...options,
    signal: abort.signal,
  });
  const stop = async () => {
    abort.abort();
    h.finishAll();
    await done;
  };
  return { h, stop };
}

/** A loop over an endless queue: each fetch returns as many deliveries as asked for. */
function endlessLoop(options: { concurrency: number; minFree?: number }) {
  const asked: number[] = [];
  let next = 0;
  const loop = startLoop({
    ...options,
    fetch: (max) => {
      asked.push(max);
      return Array.from({ length: max }, () => delivery(String(next++)));
    },
  });
  return { asked, ...loop };
}

describe('runPullLoop', () => {
  it('fetches no more than the free slots, and again as slots free', async () => {
    const { asked, h, stop } = endlessLoop({ concurrency: 3 });
    await h.startedCount(3);
    expect(asked).toEqual([3]);
    h.finishOne();
    await h.startedCount(4);
    expect(asked).toEqual([3, 1]);
    await stop();
    expect(h.started).toHaveLength(4);
  });

  it('with minFree, waits for that many free slots before fetching again', async () => {
    const { asked, h, stop } = endlessLoop({ concurrency: 4, minFree: 2 });
    await h.startedCount(4);
    h.finishOne();
    await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    expect(asked).toEqual([4]);
    h.finishOne();
    await h.startedCount(6);
    expect(asked).toEqual([4, 2]);
    await stop();
  });

  it('resolves after the abort only once every started handler has finished', async () => {
    const abort = new AbortController();
    const h = gatedHandler();
    let fetched = false;
    let resolved = false;
    const done = runPullLoop({
      signal: abort.signal,
      concurrency: 2,
      what: 'test',
      backoff: fastBackoff,
      fetch: () => {
        if (fetched) return [];
        fetched = true;
        return [delivery('a'), delivery('b')];
      },
      handler: h.handler,
    }).then(() => {
      resolved = true;
    });
    await h.startedCount(2);
    abort.abort();
    h.finishOne();
    await new Promise((resolve) => setImmediate(resolve));
    expect(resolved).toBe(false);
    h.finishOne();
    await done;
    expect(resolved).toBe(true);
  });

  it('reports the outage once on the first failed fetch and once on recovery, and keeps fetching', async () => {
    const changes: Array<[boolean, string | undefined]> = [];
    let calls = 0;
    const { h, stop } = startLoop({
      fetch: async () => {
        calls += 1;
        if (calls <= 3) throw new Error(`down ${calls}`);
        return calls === 4 ? [delivery('after')] : [];
      },
      onConnectionChange: (connected, error) => changes.push([connected, error?.message]),
    });
    await h.startedCount(1);
    expect(changes).toEqual([
      [false, 'down 1'],
      [true, undefined],
    ]);
    await stop();
  });

  it('waits the idle pause after an empty fetch, doubling up to its cap, and resets it on work', async () => {
    const waits: number[] = [];
    let fifthWait: () => void = () => {};
    const fifth = new Promise<void>((resolve) => {
      fifthWait = resolve;
    });
    let calls = 0;
    const { h, stop } = startLoop({
      idle: {
        minMs: 10,
        maxMs: 40,
        wait: (ms) => {
          waits.push(ms);
          if (waits.length === 5) fifthWait();
          return new Promise((resolve) => setImmediate(resolve));
        },
      },
      fetch: () => {
        calls += 1;
        return calls === 5 ? [delivery('x')] : [];
      },
    });
    await h.startedCount(1);
    expect(waits).toEqual([10, 20, 40, 40]);
    h.finishOne();
    await fifth;
    expect(waits[4]).toBe(10);
    await stop();
  });

  it('stops waiting for a blocked fetch on abort when the driver says it may', async () => {
    const abort = new AbortController();
    const done = runPullLoop({
      signal: abort.signal,
      concurrency: 1,
      what: 'test',
      backoff: fastBackoff,
      fetch: () => new Promise<never>(() => {}),
      abandonFetch: () => true,
      handler: async () => {},
    });
    abort.abort();
    await expect(done).resolves.toBeUndefined();
  });

  it('keeps consuming when a handler rejects, and frees its slot', async () => {
    const abort = new AbortController();
    let calls = 0;
    const seen: string[] = [];
    let last: () => void = () => {};
    const second = new Promise<void>((resolve) => {
      last = resolve;
    });
    const done = runPullLoop({
      signal: abort.signal,
      concurrency: 1,
      what: 'test',
      backoff: fastBackoff,
      fetch: () => {
        calls += 1;
        return calls <= 2 ? [delivery(String(calls))] : [];
      },
      handler: async (d) => {
        seen.push(d.messageId);
        if (d.messageId === '1') throw new Error('boom');
        last();
      },
    });
    await second;
    expect(seen).toEqual(['1', '2']);
    abort.abort();
    await done;
  });

  it('rejects a concurrency that is not a positive integer', () => {
    expect(() =>
      runPullLoop({
        signal: new AbortController().signal,
        concurrency: 0,
        what: 'test',
        backoff: fastBackoff,
        fetch: () => [],
        handler: async () => {},
      }),
    ).toThrow(/concurrency/);
  });
});
