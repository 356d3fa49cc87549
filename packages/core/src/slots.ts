/**
 * A counting semaphore for handler slots, made for per-message paths: a free slot is taken
 * synchronously (tryAcquire, no promise), and only a caller that has to wait gets one. Waiters
 * are woken one per release, in order; wakeAll() lets every waiter re-check whether it should
 * give up (a drain, a rebalance).
 */
export class Slots {
  #used = 0;
  #waiters: Array<() => void> = [];

  constructor(readonly size: number) {}

  get used(): number {
    return this.#used;
  }

  get free(): number {
    return this.size - this.#used;
  }

  /** Takes a slot if one is free. */
  tryAcquire(): boolean {
    if (this.#used >= this.size) return false;
    this.#used += 1;
    return true;
  }

  /** Takes a slot, waiting for one; false (and no slot) once giveUp() says so. */
  async acquire(giveUp: () => boolean): Promise<boolean> {
    while (this.#used >= this.size) {
      if (giveUp()) return false;
      await this.released();
    }
    if (giveUp()) return false;
    this.#used += 1;
    return true;
  }

  /** Gives a slot back and wakes the longest waiter. */
  release(): void {
    this.#used -= 1;
    this.#waiters.shift()?.();
  }

  /** Resolves at the next release() or wakeAll(). */
  released(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  wakeAll(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
