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

export interface IdempotencyStore {
  claim(key: string, leaseMs: number): Promise<ClaimResult>;
  /** Records the side effect as done (kept for ttlMs, so a redelivery within it is skipped). */
  complete(key: string, result: unknown, ttlMs?: number): Promise<void>;
  /** Gives the key up so a retry can claim it. */
  release(key: string): Promise<void>;
  close?(): Promise<void>;
}

export const DEFAULT_DONE_TTL_MS = 7 * 24 * 3_600_000;

/** The one 'claimed' answer, shared: a claim per job need not allocate. */
export const CLAIMED: ClaimResult = Object.freeze({ state: 'claimed' });

interface Entry {
  doneResult?: unknown;
  done: boolean;
  expiresAt: number;
}

/** An in-process store for unit tests and the memory broker. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #entries = new Map<string, Entry>();
  constructor(private readonly now: () => number = Date.now) {}

  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const now = this.now();
    const entry = this.#entries.get(key);
    if (entry && entry.expiresAt > now) {
      return entry.done
        ? { state: 'done', result: entry.doneResult }
        : { state: 'busy', retryInMs: entry.expiresAt - now };
    }
    this.#entries.set(key, { done: false, expiresAt: now + leaseMs });
    return CLAIMED;
  }

  async complete(key: string, result: unknown, ttlMs = DEFAULT_DONE_TTL_MS): Promise<void> {
    this.#entries.set(key, { done: true, doneResult: result, expiresAt: this.now() + ttlMs });
  }

  async release(key: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry && !entry.done) this.#entries.delete(key);
  }
}
