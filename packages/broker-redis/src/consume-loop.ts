import type { ConsumeOptions, Delivery, DeliveryHandler, Logger } from '@polyqueue/core';
import type { RedisClient } from './connection';

/**
 * The loop every Redis consumer shares: fetch up to the free handler slots, run the handlers,
 * fetch again. A failed fetch (Redis down) is logged and retried with a capped backoff, so a
 * restart of the server never ends consumption. Resolves when signal has aborted and every
 * handler started has finished.
 */
export function runConsumeLoop(options: ConsumeLoopOptions): Promise<void> {
  return new ConsumeLoop(options).run();
}

interface ConsumeLoopOptions {
  signal: AbortSignal;
  concurrency: number;
  fetch: (max: number) => Promise<Delivery[]>;
  handler: DeliveryHandler;
  logger: Logger;
  /**
   * When signal aborts during a fetch, whether to stop waiting for it: true while the blocking
   * connection is down (its command would wait for the server); otherwise the fetch returns
   * within REDIS_BLOCK_MS and its jobs are handled.
   */
  abandonFetch: () => boolean;
}

/**
 * Runs once per job, so it keeps a count of running handlers and one waiter instead of a set
 * of promises raced on every free slot: a race over the in-flight promises costs a reaction
 * per promise per wait, and racing a promise that only settles at shutdown (the abort) leaves
 * one reaction behind per wait for the whole life of the consumer.
 */
class ConsumeLoop {
  readonly #options: ConsumeLoopOptions;
  readonly #concurrency: number;
  #running = 0;
  /** Wakes the loop waiting for a free slot (or, after the abort, for the last handler). */
  #wake: (() => void) | undefined;
  /** Ends the wait for the fetch in progress, when the abort comes while it blocks. */
  #abandon: (() => void) | undefined;

  constructor(options: ConsumeLoopOptions) {
    this.#options = options;
    this.#concurrency = Math.max(1, options.concurrency);
  }

  async run(): Promise<void> {
    const { signal, logger } = this.#options;
    const onAbort = () => {
      this.#wakeUp();
      this.#abandon?.();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let failures = 0;
    try {
      while (!signal.aborted) {
        if (this.#running >= this.#concurrency) {
          await this.#woken();
          continue;
        }
        let batch: Delivery[] | null;
        try {
          batch = await this.#fetch(this.#concurrency - this.#running);
          failures = 0;
        } catch (error) {
          failures += 1;
          if (failures === 1 || failures % 20 === 0)
            logger.warn({ err: error, failures }, 'fetching from redis failed; retrying');
          await sleep(Math.min(50 * 2 ** failures, 2_000), signal);
          continue;
        } finally {
          this.#abandon = undefined;
        }
        if (batch === null) break;
        for (const delivery of batch) this.#start(delivery);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    while (this.#running > 0) await this.#woken();
  }

  #fetch(max: number): Promise<Delivery[] | null> {
    const fetching = this.#options.fetch(max);
    return new Promise((resolve, reject) => {
      this.#abandon = () => {
        if (!this.#options.abandonFetch()) return;
        fetching.catch(() => {});
        resolve(null);
      };
      fetching.then(resolve, reject);
    });
  }

  #start(delivery: Delivery): void {
    this.#running += 1;
    this.#options.handler(delivery).then(this.#finished, (error) => {
      // Unsettled: a lease (reliable, streams) brings it back; redis-list loses it.
      this.#options.logger.error(
        { err: error, messageId: delivery.messageId },
        'delivery handler failed without settling',
      );
      this.#finished();
    });
  }

  readonly #finished = (): void => {
    this.#running -= 1;
    this.#wakeUp();
  };

  #woken(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/**
 * Runs task now and again after the delay it returns (ms), until signal aborts. Errors are
 * logged and the task runs again after fallbackMs. Resolves once the last run finished.
 */
export function repeat(
  task: () => Promise<number>,
  fallbackMs: number,
  signal: AbortSignal,
  logger: Logger,
  what: string,
): Promise<void> {
  return (async () => {
    while (!signal.aborted) {
      let next = fallbackMs;
      try {
        next = await task();
      } catch (error) {
        logger.warn({ err: error }, `${what} failed; trying again`);
      }
      await sleep(Math.max(5, next), signal);
    }
  })();
}

/** Reports connection loss and recovery of a consumer's blocking connection. */
export function watchConnection(redis: RedisClient, options: ConsumeOptions): () => void {
  const report = options.onConnectionChange;
  if (!report) return () => {};
  let up = redis.status === 'ready';
  let lastError: Error | undefined;
  const onError = (error: Error) => {
    lastError = error;
  };
  const onClose = () => {
    if (!up) return;
    up = false;
    report(false, lastError ?? new Error('redis connection closed'));
  };
  const onReady = () => {
    if (up) return;
    up = true;
    report(true);
  };
  redis.on('error', onError);
  redis.on('close', onClose);
  redis.on('ready', onReady);
  return () => {
    redis.off('error', onError);
    redis.off('close', onClose);
    redis.off('ready', onReady);
  };
}

export function abortPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Resolves after ms, or at once when signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * What every Redis delivery reads from its body: the envelope id (messageId) and attempt.
 * Read on first use and from one JSON.parse for both, as messageIdOf + attemptOf would give
 * them: the runtime decodes the body itself, so reading it here more than once is pure cost.
 */
export abstract class BodyDelivery {
  readonly body: string;
  #messageId: string | undefined;
  #attempt = 0;

  constructor(body: string) {
    this.body = body;
  }

  /** The id of a body without one (foreign or malformed); asked at most once per delivery. */
  protected abstract fallbackId(): string;

  get messageId(): string {
    if (this.#messageId === undefined) this.#read();
    return this.#messageId as string;
  }

  get attempt(): number {
    if (this.#attempt === 0) this.#read();
    return this.#attempt;
  }

  #read(): void {
    let id: unknown;
    let attempt: unknown;
    try {
      const json = JSON.parse(this.body) as { id?: unknown; attempt?: unknown } | null;
      id = json?.id;
      attempt = json?.attempt;
    } catch {
      // Unreadable: the fallback id and attempt 1, as for a body without them.
    }
    this.#messageId = typeof id === 'string' && id.length > 0 ? id : this.fallbackId();
    // As core's attemptOf: 1 when absent or not a whole number >= 1.
    this.#attempt = typeof attempt === 'number' && Number.isInteger(attempt) && attempt >= 1 ? attempt : 1;
  }
}
