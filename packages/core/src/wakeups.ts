/**
 * Lets a publish in this process cut short the idle pause of its own consumers: a table queue
 * (SQLite, MySQL) finds another process's work by polling, but its own at once.
 */
export class Wakeups {
  readonly #waiters = new Map<string, Set<() => void>>();

  /** Resolves after ms, on wake(key), or when signal aborts, whichever comes first. */
  wait(key: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      let waiters = this.#waiters.get(key);
      if (!waiters) {
        waiters = new Set();
        this.#waiters.set(key, waiters);
      }
      const mine = waiters;
      const done = () => {
        clearTimeout(timer);
        mine.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      mine.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Ends every wait on key now. */
  wake(key: string): void {
    const waiters = this.#waiters.get(key);
    if (!waiters || waiters.size === 0) return;
    for (const waiter of [...waiters]) waiter();
  }
}
