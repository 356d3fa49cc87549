import {
  type Delivery,
  type DeliveryHandler,
  decodeEnvelope,
  type Envelope,
  type JobContext,
} from '@polyqueue/core';

export interface Received {
  delivery: Delivery;
  envelope: Envelope | undefined;
  /** The envelope id, or the broker's message id for a body that is not an envelope. */
  id: string;
  at: number;
  consumer: string;
}

type Waiter = { predicate: () => boolean; resolve: () => void };

/**
 * Records deliveries so tests await them instead of sleeping:
 * `await spy.waitFor(() => spy.count(id) === 2, 'the retry')`.
 */
export class HandlerSpy {
  readonly received: Received[] = [];
  #waiters: Waiter[] = [];

  constructor(private readonly defaultTimeoutMs = 20_000) {}

  /** A handler that records each delivery, then settles it with `settle` (default: ack). */
  handler(
    consumer = 'c1',
    settle: (delivery: Delivery, received: Received) => Promise<void> = (d) => d.ack(),
  ): DeliveryHandler {
    return async (delivery) => {
      const decoded = decodeEnvelope(delivery.body, delivery.messageId);
      const envelope = decoded.ok ? decoded.envelope : undefined;
      const received: Received = {
        delivery,
        envelope,
        id: envelope?.id ?? delivery.messageId,
        at: Date.now(),
        consumer,
      };
      this.received.push(received);
      this.#check(); // a waiter may be satisfied by the arrival itself, before the handler settles
      try {
        await settle(delivery, received);
      } finally {
        this.#check();
      }
    };
  }

  /** Called by code that changes state the waiters look at outside a handler. */
  notify(): void {
    this.#check();
  }

  count(id: string): number {
    return this.received.filter((r) => r.id === id).length;
  }

  ids(): string[] {
    return this.received.map((r) => r.id);
  }

  distinctIds(): Set<string> {
    return new Set(this.ids());
  }

  waitFor(predicate: () => boolean, what: string, timeoutMs = this.defaultTimeoutMs): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { predicate, resolve: () => {} };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what} (received ${this.received.length})`),
        );
      }, timeoutMs);
      waiter.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push(waiter);
    });
  }

  #check(): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.predicate()) {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        waiter.resolve();
      }
    }
  }
}

/** A promise with its resolve exposed, for gates in tests. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Worker handlers for `test_job` that record each job's id when it starts and once it ran; a
 * job whose payload has `slow: true` waits for `release` in between (a job held in flight).
 * `onRun` sees each job's context just before it counts as ran.
 */
export function gatedJobHandlers(onRun?: (context: JobContext) => void) {
  const started: string[] = [];
  const ran: string[] = [];
  const release = deferred();
  const handlers = {
    test_job: {
      handle: async (payload: unknown, context: JobContext) => {
        started.push(context.envelope.id);
        if ((payload as { slow?: boolean }).slow) await release.promise;
        onRun?.(context);
        ran.push(context.envelope.id);
      },
    },
  };
  return { handlers, started, ran, release };
}

/**
 * Polls an async condition (broker stats, an HTTP status) until it holds; for state that
 * emits no event. Fails with the last value seen.
 */
export async function eventually<T>(
  read: () => Promise<T>,
  check: (value: T) => boolean,
  what: string,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      last = await read();
      if (check(last)) return last;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const seen = lastError ? `last error: ${String(lastError)}` : `last value: ${JSON.stringify(last)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${seen}`);
}
