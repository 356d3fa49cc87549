import { Slots } from '@polyqueue/core';

/**
 * Runs items `concurrency` at a time, those with the same key one after another in the order
 * they were handed in, those with different keys or no key in parallel. Kafka's ordering per key
 * (same key -> same partition) survives several handlers per partition this way.
 *
 * An item waiting for its key's predecessor holds no slot; it takes one when its turn comes. The
 * usual item (no predecessor, a free slot) starts synchronously: no async frame and no await per
 * item, as every message goes through here (an async frame per message showed in allocation
 * profiles).
 */
export interface KeyedSchedulerOptions<T> {
  concurrency: number;
  /** Runs an item that holds a slot; the slot is given back when the promise settles. */
  start(item: T): Promise<void>;
  /** start() threw or rejected; the run ends as if it had resolved. */
  failed(item: T, error: unknown): void;
  /** Every item handed to run() ends here once: after it ran, or given up by stop() (ran false). */
  ended(item: T, ran: boolean): void;
}

/** The run waiting last per key, of one ordering domain (a partition). */
export type KeyChains = Map<string, Promise<void>>;

export class KeyedScheduler<T> {
  readonly #options: KeyedSchedulerOptions<T>;
  readonly #slots: Slots;
  /** Items handed to run() and not ended (waiting for their key, a slot, or running). */
  #active = 0;
  #idle: Array<() => void> = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopping = false;

  constructor(options: KeyedSchedulerOptions<T>) {
    this.#options = options;
    this.#slots = new Slots(Math.max(1, options.concurrency));
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /**
   * Runs the item after the previous one with its key in `chains`; resolves when it ended
   * (never rejects).
   */
  run(item: T, key: string | undefined, chains: KeyChains): Promise<void> {
    const previous = key === undefined ? undefined : chains.get(key);
    this.#active += 1;
    // The usual case, nothing to wait for, starts at once; the rest waits in #execute().
    const task =
      previous === undefined && !this.#stopping && this.#slots.tryAcquire()
        ? this.#begin(item)
        : this.#execute(item, previous);
    if (key !== undefined) {
      chains.set(key, task);
      task.finally(() => {
        if (chains.get(key) === task) chains.delete(key);
      });
    }
    return task;
  }

  /** Runs task after delayMs unless stop() comes first. */
  defer(delayMs: number, task: () => void): void {
    const timer = setTimeout(
      () => {
        this.#timers.delete(timer);
        task();
      },
      Math.max(0, delayMs),
    );
    this.#timers.add(timer);
  }

  /** Starts nothing more: waiting items end unrun, deferred tasks are dropped. */
  stop(): void {
    this.#stopping = true;
    this.#slots.wakeAll();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  /** Resolves once every item handed to run() has ended. */
  async idle(): Promise<void> {
    while (this.#active > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** For items that had to wait: their key's predecessor, then a slot. */
  async #execute(item: T, previous: Promise<void> | undefined): Promise<void> {
    if (previous) await previous;
    // During a stop an unstarted item is given up (for Kafka: left uncommitted for the next consumer).
    if (!this.#stopping && (this.#slots.tryAcquire() || (await this.#slots.acquire(() => this.#stopping)))) {
      return this.#begin(item);
    }
    this.#end(item, false);
  }

  /** Runs an item that holds a slot. Not async: see the class comment. */
  #begin(item: T): Promise<void> {
    let running: Promise<void>;
    try {
      running = this.#options.start(item);
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.then(
      () => this.#finish(item),
      (error) => {
        this.#options.failed(item, error);
        this.#finish(item);
      },
    );
  }

  #finish(item: T): void {
    this.#slots.release();
    this.#end(item, true);
  }

  #end(item: T, ran: boolean): void {
    this.#options.ended(item, ran);
    this.#active -= 1;
    if (this.#active === 0) for (const wake of this.#idle.splice(0)) wake();
  }
}
