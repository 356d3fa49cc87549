import { describe, expect, it } from 'vitest';
import { sleep, whenAborted } from '../src/sleep';
import { Wakeups } from '../src/wakeups';

describe('sleep', () => {
  it('ends at once when the signal aborts', async () => {
    const abort = new AbortController();
    const waiting = sleep(60_000, abort.signal);
    abort.abort();
    await expect(waiting).resolves.toBeUndefined();
  });

  it('does not wait on an already aborted signal', async () => {
    await expect(sleep(60_000, AbortSignal.abort())).resolves.toBeUndefined();
  });

  it('whenAborted resolves on the abort', async () => {
    const abort = new AbortController();
    const waiting = whenAborted(abort.signal);
    abort.abort();
    await expect(waiting).resolves.toBeUndefined();
  });
});

describe('Wakeups', () => {
  it('wake(key) ends the waits on that key only', async () => {
    const wakeups = new Wakeups();
    const signal = new AbortController().signal;
    let other = false;
    const mine = wakeups.wait('email', 60_000, signal);
    const theirs = wakeups.wait('image', 60_000, signal).then(() => {
      other = true;
    });
    wakeups.wake('email');
    await mine;
    expect(other).toBe(false);
    wakeups.wake('image');
    await theirs;
  });

  it('ends on the abort', async () => {
    const abort = new AbortController();
    const waiting = new Wakeups().wait('email', 60_000, abort.signal);
    abort.abort();
    await expect(waiting).resolves.toBeUndefined();
  });
});
