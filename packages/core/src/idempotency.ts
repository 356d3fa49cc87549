/**
 * The idempotency port: a worker claims a job's key with a lease before its side effect,
 * completes it after, and releases it on failure. Claiming is one atomic step (never a
 * check-then-set), so two workers given the same job cannot both run it.
 *
 * Claims are owned: the claimant passes an owner token (unique per delivery) and only that
 * owner can renew, complete or release the claim. A worker that stalled past its lease, whose
 * key another worker has since taken, can therefore neither delete nor overwrite the new
 * holder's claim. Claims are leased like deliveries: the runtime renews the lease while the
 * handler runs, so a dead worker's key is free again one lease after its last heartbeat.
 */
export type ClaimResult =
  /** The owner holds the key until it completes or releases it, or the lease ends unrenewed. */
  | { state: 'claimed' }
  /** The side effect already happened; the delivery is acked without running again. */
  | { state: 'done'; result: unknown }
  /** Another owner holds a live lease; try again after retryInMs (when that lease would end). */
  | { state: 'busy'; retryInMs: number };

/** One claim of a batch: claim(key, owner, leaseMs). */
export interface ClaimEntry {
  key: string;
  owner: string;
  leaseMs: number;
}

/** One done mark of a batch: complete(key, owner, result, ttlMs). */
export interface CompleteEntry {
  key: string;
  owner: string;
  result: unknown;
  ttlMs?: number;
}

/**
 * A store over the network answers with promises; an in-process one may answer at once, and the
 * runtime (which calls claim and complete for every job) then spends no promise on it.
 */
export interface IdempotencyStore {
  /**
   * Takes the key for owner until leaseMs from now: when it is free, when its lease (or its done
   * record) has expired, or when owner already holds it (which renews the lease).
   */
  claim(key: string, owner: string, leaseMs: number): ClaimResult | Promise<ClaimResult>;
  /** Extends owner's lease to leaseMs from now; false when owner no longer holds the key. */
  renew(key: string, owner: string, leaseMs: number): boolean | Promise<boolean>;
  /**
   * Records the side effect as done (kept for ttlMs, so a redelivery within it is skipped), when
   * owner holds the key, also past its lease, or nobody does. Returns false, and changes nothing,
   * when another owner has taken the key meanwhile: that owner will record it.
   */
  complete(key: string, owner: string, result: unknown, ttlMs?: number): boolean | Promise<boolean>;
  /** Gives the key up so a retry can claim it; only owner's live claim is released. */
  release(key: string, owner: string): void | Promise<void>;
  /**
   * Many claims in one round trip (or one transaction): each entry answered as claim() would
   * answer it, in order, as if the entries were claimed one after another. Optional: a store
   * that has it and completeMany is coalesced by the runtime (see coalesceIdempotency).
   */
  claimMany?(entries: readonly ClaimEntry[]): Promise<ClaimResult[]>;
  /** Many done marks in one round trip: each entry answered as complete() would, in order. */
  completeMany?(entries: readonly CompleteEntry[]): Promise<boolean[]>;
  /**
   * True when the store itself gathers the calls made in one event-loop turn into one commit
   * (the SQLite store's group commit): the runtime then calls it directly, as coalescing would
   * only hold a call made while a batch is in flight back for the next commit.
   */
  readonly groupCommit?: boolean;
  close?(): Promise<void>;
}

export const DEFAULT_DONE_TTL_MS = 7 * 24 * 3_600_000;

/** The one 'claimed' answer, shared: a claim per job need not allocate. */
export const CLAIMED: ClaimResult = Object.freeze({ state: 'claimed' });

/**
 * An in-process store for unit tests and the memory broker; it answers synchronously.
 *
 * Kept lean because the runtime claims and completes a key for every job: one map from key to
 * expiry time in ms, negated once the key is done (a number, not an object per key), the owner
 * of each undone key in a second map, and the done results that are not null in a third.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #expiry = new Map<string, number>();
  readonly #owners = new Map<string, string>();
  readonly #results = new Map<string, unknown>();
  constructor(private readonly now: () => number = Date.now) {}

  claim(key: string, owner: string, leaseMs: number): ClaimResult {
    const now = this.now();
    const signed = this.#expiry.get(key);
    if (signed !== undefined) {
      const done = signed < 0;
      const expiresAt = done ? -signed : signed;
      if (expiresAt > now) {
        if (done) return { state: 'done', result: this.#results.has(key) ? this.#results.get(key) : null };
        if (this.#owners.get(key) !== owner) return { state: 'busy', retryInMs: expiresAt - now };
      }
      this.#results.delete(key);
    }
    this.#expiry.set(key, now + leaseMs);
    this.#owners.set(key, owner);
    return CLAIMED;
  }

  renew(key: string, owner: string, leaseMs: number): boolean {
    if (this.#owners.get(key) !== owner) return false;
    this.#expiry.set(key, this.now() + leaseMs);
    return true;
  }

  complete(key: string, owner: string, result: unknown, ttlMs = DEFAULT_DONE_TTL_MS): boolean {
    const holder = this.#owners.get(key);
    if (holder !== undefined && holder !== owner) return false;
    this.#owners.delete(key);
    this.#expiry.set(key, -(this.now() + ttlMs));
    if (result !== null) this.#results.set(key, result);
    else if (this.#results.size > 0) this.#results.delete(key);
    return true;
  }

  release(key: string, owner: string): void {
    if (this.#owners.get(key) !== owner) return;
    this.#owners.delete(key);
    this.#expiry.delete(key);
  }
}
