/**
 * The idempotency port: a worker claims a job's key with a lease before its side effect,
 * completes it after, and releases it on failure. Claiming is one atomic step (never a
 * check-then-set), so two workers given the same job cannot both run it.
 */
export type ClaimResult =
  /** This worker holds the key until it completes or releases it, or the lease ends. */
  | { state: 'claimed' }
  /** The side effect already happened; the delivery is acked without running again. */
  | { state: 'done'; result: unknown }
  /** Another worker holds a live lease; try again after retryInMs. */
  | { state: 'busy'; retryInMs: number };

/**
 * A store over the network answers with promises; an in-process one may answer at once, and the
 * runtime (which calls claim and complete for every job) then spends no promise on it.
 */
export interface IdempotencyStore {
  claim(key: string, leaseMs: number): ClaimResult | Promise<ClaimResult>;
  /** Records the side effect as done (kept for ttlMs, so a redelivery within it is skipped). */
  complete(key: string, result: unknown, ttlMs?: number): void | Promise<void>;
  /** Gives the key up so a retry can claim it. */
  release(key: string): void | Promise<void>;
  close?(): Promise<void>;
}

export const DEFAULT_DONE_TTL_MS = 7 * 24 * 3_600_000;

/** The one 'claimed' answer, shared: a claim per job need not allocate. */
export const CLAIMED: ClaimResult = Object.freeze({ state: 'claimed' });

/**
 * An in-process store for unit tests and the memory broker; it answers synchronously.
 *
 * Kept lean because the runtime claims and completes a key for every job: one map from key to
 * expiry time in ms, negated once the key is done (a number, not an object per key), and the
 * done results that are not null in a second map.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #expiry = new Map<string, number>();
  readonly #results = new Map<string, unknown>();
  constructor(private readonly now: () => number = Date.now) {}

  claim(key: string, leaseMs: number): ClaimResult {
    const now = this.now();
    const signed = this.#expiry.get(key);
    if (signed !== undefined) {
      const done = signed < 0;
      const expiresAt = done ? -signed : signed;
      if (expiresAt > now) {
        if (!done) return { state: 'busy', retryInMs: expiresAt - now };
        return { state: 'done', result: this.#results.has(key) ? this.#results.get(key) : null };
      }
      this.#results.delete(key);
    }
    this.#expiry.set(key, now + leaseMs);
    return CLAIMED;
  }

  complete(key: string, result: unknown, ttlMs = DEFAULT_DONE_TTL_MS): void {
    this.#expiry.set(key, -(this.now() + ttlMs));
    if (result !== null) this.#results.set(key, result);
    else if (this.#results.size > 0) this.#results.delete(key);
  }

  release(key: string): void {
    const signed = this.#expiry.get(key);
    if (signed !== undefined && signed >= 0) this.#expiry.delete(key);
  }
}
