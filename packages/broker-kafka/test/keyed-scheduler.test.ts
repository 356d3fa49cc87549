import { describe, expect, it } from 'vitest';
import { type KeyChains, KeyedScheduler } from '../src/keyed-scheduler';

interface Item {
  id: string;
  key?: string;
}

/** A scheduler whose runs the test finishes by id. */
function harness(concurrency: number) {
  const started: string[] = [];
  const endings: Array<[string, boolean]> = [];
  const failures: string[] = [];
  const gates = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  const scheduler = new KeyedScheduler<Item>({
    concurrency,
    start: (item) =>
      new Promise<void>((resolve, reject) => {
        started.push(item.id);
        gates.set(item.id, { resolve, reject });
      }),
    failed: (item) => failures.push(item.id),
    ended: (item, ran) => endings.push([item.id, ran]),
  });
  const chains: KeyChains = new Map();
  const run = (item: Item) => scheduler.run(item, item.key, chains);
  return { scheduler, chains, run, started, endings, failures, gates };
}

describe('KeyedScheduler', () => {
  it('starts an item with no predecessor and a free slot synchronously', () => {
    const h = harness(2);
    void h.run({ id: 'a' });
    expect(h.started).toEqual(['a']);
  });

  it('runs items of one key one after another, in order, and other keys beside them', async () => {
    const h = harness(4);
    const a1 = h.run({ id: 'a1', key: 'a' });
    const a2 = h.run({ id: 'a2', key: 'a' });
    void h.run({ id: 'b1', key: 'b' });
    void h.run({ id: 'n1' });
    expect(h.started).toEqual(['a1', 'b1', 'n1']);
    h.gates.get('a1')!.resolve();
    await a1;
    await Promise.resolve();
    await Promise.resolve();
    expect(h.started).toEqual(['a1', 'b1', 'n1', 'a2']);
    h.gates.get('a2')!.resolve();
    await a2;
    expect(h.chains.has('a')).toBe(false);
  });

  it('holds no more than concurrency items running', async () => {
    const h = harness(1);
    const first = h.run({ id: 'x' });
    const second = h.run({ id: 'y' });
    expect(h.started).toEqual(['x']);
    h.gates.get('x')!.resolve();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.started).toEqual(['x', 'y']);
    h.gates.get('y')!.resolve();
    await second;
    expect(h.endings).toEqual([
      ['x', true],
      ['y', true],
    ]);
  });

  it('ends a run whose start rejected, after reporting it', async () => {
    const h = harness(1);
    const run = h.run({ id: 'bad' });
    h.gates.get('bad')!.reject(new Error('boom'));
    await run;
    expect(h.failures).toEqual(['bad']);
    expect(h.endings).toEqual([['bad', true]]);
  });

  it('on stop, gives up items still waiting, drops deferred tasks, and idle() waits for the running', async () => {
    const h = harness(1);
    void h.run({ id: 'running' });
    const waiting = h.run({ id: 'waiting' });
    let deferredRan = false;
    h.scheduler.defer(0, () => {
      deferredRan = true;
    });
    h.scheduler.stop();
    await waiting;
    expect(h.endings).toEqual([['waiting', false]]);
    let idle = false;
    const done = h.scheduler.idle().then(() => {
      idle = true;
    });
    await Promise.resolve();
    expect(idle).toBe(false);
    h.gates.get('running')!.resolve();
    await done;
    expect(h.endings).toEqual([
      ['waiting', false],
      ['running', true],
    ]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(deferredRan).toBe(false);
  });
});
