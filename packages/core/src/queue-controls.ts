import { Gauge, type Registry } from 'prom-client';

/**
 * Pause and resume per queue, cluster-wide: the flag lives in the state store (STATE_URL), so
 * every worker of every host reads the same one. Workers poll paused() (one read for every
 * queue) and stop fetching a paused queue, letting the jobs in flight finish (queue-pause.ts);
 * the API, the CLI and /metrics read and write it through the same port.
 *
 * Implemented beside each state store: sqlite (a table in the state file), Redis (one set),
 * MySQL (a table), and MemoryQueueControls below for one process.
 */
export interface QueueControls {
  /** The queues paused now, read in one round trip. */
  paused(): Promise<ReadonlySet<string>>;
  /** Pauses the queue for every worker; resolves once stored. True when it was not paused yet. */
  pause(queue: string): Promise<boolean>;
  /** Lets every worker fetch from the queue again. True when it was paused. */
  resume(queue: string): Promise<boolean>;
  /** Releases the store's connection; safe to call twice. */
  close(): Promise<void>;
}

/** What a paused queue's name may be in every store (a bounded key or column, no separators to escape). */
export function assertControlledQueueName(queue: string): void {
  if (!/^[A-Za-z0-9_.:-]{1,200}$/.test(queue))
    throw new Error(`queue name ${JSON.stringify(queue)}: use 1 to 200 letters, digits or _ . : -`);
}

/** QueueControls in one process's memory: tests, and BROKER=memory with one process. */
export class MemoryQueueControls implements QueueControls {
  readonly #paused = new Set<string>();
  /** Set to an error to make every call fail (tests of a state store outage). */
  failWith: Error | undefined;

  async paused(): Promise<ReadonlySet<string>> {
    this.#check();
    return new Set(this.#paused);
  }

  async pause(queue: string): Promise<boolean> {
    this.#check();
    assertControlledQueueName(queue);
    if (this.#paused.has(queue)) return false;
    this.#paused.add(queue);
    return true;
  }

  async resume(queue: string): Promise<boolean> {
    this.#check();
    return this.#paused.delete(queue);
  }

  async close(): Promise<void> {}

  #check(): void {
    if (this.failWith) throw this.failWith;
  }
}

/**
 * polyqueue_queue_paused{queue}: 1 while the queue is paused, 0 otherwise, read from the state
 * store at scrape time (one read). A store that cannot be read leaves the gauge empty for that
 * scrape, as polyqueue_queue_depth does for the broker.
 */
export function registerQueuePausedGauge(
  registry: Registry,
  controls: Pick<QueueControls, 'paused'>,
  queues: readonly string[],
): Gauge<'queue'> {
  return new Gauge({
    name: 'polyqueue_queue_paused',
    help: 'Whether a queue is paused (1) or fetched from (0), cluster-wide, from the state store',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const paused = await controls.paused();
        for (const queue of queues) this.set({ queue }, paused.has(queue) ? 1 : 0);
      } catch {
        // Unreachable state store: no sample this scrape; /readyz reports the outage.
      }
    },
  });
}
