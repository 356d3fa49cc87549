import { type BackoffOptions, backoffDelay } from './backoff';
import type { Delivery, DeliveryHandler } from './broker';
import type { Logger } from './logger';
import { sleep } from './sleep';
import { Slots } from './slots';

/**
 * The consume loop of every polling driver, written once (as Kombu's virtual transport writes
 * it once and a transport supplies only `_get`): fetch up to the free handler slots, start a
 * handler per delivery, fetch again. A driver supplies only its broker's commands: `fetch(max)`,
 * which claims, receives or pops at most `max` messages and makes each a Delivery.
 *
 * - A failed fetch is an outage, not the end of the consumer: it is retried after core's
 *   backoffDelay (full jitter, capped), reported once through onConnectionChange(false) and
 *   once, at the next fetch that succeeds, through onConnectionChange(true).
 * - An empty fetch waits `idle` (doubling between its bounds) when the broker does not block or
 *   long-poll by itself; a driver's `idle.wait` may end it early (a publish in this process).
 * - When signal aborts, nothing more is fetched and runPullLoop resolves once every handler it
 *   started has finished.
 *
 * Per delivery it costs one counter step and one reaction to the handler's promise: no set of
 * in-flight promises, no race over them, no closure on the path that succeeds.
 */
export interface PullLoopOptions {
  signal: AbortSignal;
  concurrency: number;
  /** At most `max` (>= 1) deliveries, fewer or none when the broker has fewer. */
  fetch(max: number): Promise<readonly Delivery[]> | readonly Delivery[];
  handler: DeliveryHandler;
  /** The pause after `failures` fetches failed in a row: backoffDelay(failures, backoff). */
  backoff: BackoffOptions;
  logger?: Logger;
  /** Names the consumer in logs (`sqs queue polyqueue-email`). */
  what: string;
  /** Reported once when fetches start failing and once when one succeeds again. */
  onConnectionChange?: (connected: boolean, error?: Error) => void;
  /**
   * With handlers running, fetch only once this many slots are free (one claim for many
   * finished jobs rather than one per job); 1 by default.
   */
  minFree?: number;
  /** After an empty fetch: wait, from minMs doubling to maxMs; absent, fetch again at once. */
  idle?: { minMs: number; maxMs: number; wait?: (ms: number, signal: AbortSignal) => Promise<void> };
  /**
   * When signal aborts during a fetch, whether to stop waiting for it (its messages, if any
   * come, are then not handled: only for fetches that leave them with the broker or a lease).
   */
  abandonFetch?: () => boolean;
}

export function runPullLoop(options: PullLoopOptions): Promise<void> {
  return new PullLoop(options).run();
}

class PullLoop {
  readonly #o: PullLoopOptions;
  readonly #slots: Slots;
  readonly #minFree: number;
  /** Ends the wait for the fetch in progress, when the abort comes while it blocks. */
  #abandon: (() => void) | undefined;

  constructor(options: PullLoopOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1)
      throw new Error(`concurrency must be a positive integer, got ${options.concurrency}`);
    this.#o = options;
    this.#slots = new Slots(options.concurrency);
    this.#minFree = Math.min(options.concurrency, Math.max(1, options.minFree ?? 1));
  }

  async run(): Promise<void> {
    const { signal, idle } = this.#o;
    const slots = this.#slots;
    const onAbort = () => {
      slots.wakeAll();
      this.#abandon?.();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let failures = 0;
    let idleMs = idle?.minMs ?? 0;
    try {
      while (!signal.aborted) {
        const free = slots.free;
        if (free === 0 || (free < this.#minFree && slots.used > 0)) {
          await slots.released();
          continue;
        }
        let batch: readonly Delivery[] | null;
        try {
          batch = await this.#fetch(free);
        } catch (error) {
          if (signal.aborted) break;
          failures += 1;
          this.#failed(error as Error, failures);
          await sleep(backoffDelay(failures, this.#o.backoff), signal);
          continue;
        } finally {
          this.#abandon = undefined;
        }
        if (failures > 0) {
          this.#o.logger?.info({ consumer: this.#o.what, failures }, 'fetching works again; consuming');
          failures = 0;
          this.#o.onConnectionChange?.(true);
        }
        if (batch === null) break;
        if (batch.length === 0) {
          if (!idle) continue;
          await (idle.wait ? idle.wait(idleMs, signal) : sleep(idleMs, signal));
          idleMs = Math.min(idle.maxMs, idleMs * 2);
          continue;
        }
        if (idle) idleMs = idle.minMs;
        for (const delivery of batch) this.#start(delivery);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    while (slots.used > 0) await slots.released();
  }

  #failed(error: Error, failures: number): void {
    // The first failure and then every 20th: an outage of minutes logs a few lines, not hundreds.
    if (failures === 1 || failures % 20 === 0)
      this.#o.logger?.warn({ err: error, consumer: this.#o.what, failures }, 'fetching failed; retrying');
    if (failures === 1) this.#o.onConnectionChange?.(false, error);
  }

  #fetch(max: number): Promise<readonly Delivery[] | null> | readonly Delivery[] {
    const fetching = this.#o.fetch(max);
    const { abandonFetch } = this.#o;
    if (!abandonFetch || !(fetching instanceof Promise)) return fetching;
    return new Promise((resolve, reject) => {
      this.#abandon = () => {
        if (!abandonFetch()) return;
        fetching.catch(() => {});
        resolve(null);
      };
      fetching.then(resolve, reject);
    });
  }

  #start(delivery: Delivery): void {
    this.#slots.tryAcquire();
    let running: Promise<void>;
    try {
      running = this.#o.handler(delivery);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(this.#finished, (error) => {
      // Left unsettled: a lease or visibility timeout brings it back where the broker has one.
      this.#o.logger?.error(
        { err: error, consumer: this.#o.what, messageId: delivery.messageId },
        'delivery handler failed without settling',
      );
      this.#finished();
    });
  }

  readonly #finished = (): void => {
    this.#slots.release();
  };
}
