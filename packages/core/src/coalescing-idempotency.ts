import type { ClaimEntry, ClaimResult, CompleteEntry, IdempotencyStore } from './idempotency';

/**
 * The most entries one batch carries, so a Lua script or SQL statement stays small; the rest
 * wait for the next batch.
 */
export const MAX_IDEMPOTENCY_BATCH = 256;

/** A store that claims and completes many keys per round trip. */
export type BatchingIdempotencyStore = IdempotencyStore &
  Required<Pick<IdempotencyStore, 'claimMany' | 'completeMany'>>;

export function hasBatches(store: IdempotencyStore): store is BatchingIdempotencyStore {
  return typeof store.claimMany === 'function' && typeof store.completeMany === 'function';
}

/**
 * The store the runtime uses: one that has claimMany and completeMany gets its claims and done
 * marks coalesced (see CoalescingIdempotencyStore); any other is used as it is (an in-process
 * store answers at once, and coalescing would only cost it promises; a store with its own group
 * commit, `groupCommit`, already shares one commit among a turn's calls).
 */
export function coalesceIdempotency(store: IdempotencyStore): IdempotencyStore {
  if (store instanceof CoalescingIdempotencyStore || store.groupCommit || !hasBatches(store)) return store;
  return new CoalescingIdempotencyStore(store);
}

/**
 * Claims and done marks gathered into batches, one batch of each in flight at a time: the calls
 * made in one turn of the event loop while none is in flight go out together once that turn's
 * promise work is done (a nextTick after the microtasks, no timer, so a quiet worker waits no
 * longer than before; a lone call goes through the single method); calls made while one is in
 * flight go out together as the next batch when it returns. The jobs of one fetched batch,
 * started in one turn, so share one claim call rather than a lone first one and a batch of the
 * rest behind it (two round trips). Each caller gets its own entry's answer, after
 * the store has answered the whole batch, so a done mark is as durable when its promise
 * resolves as complete() would have made it.
 *
 * A batch that fails is sent again entry by entry, each through the single method: one entry
 * the store cannot take (a result JSON cannot encode) then fails only its own caller, and
 * every caller gets the answer or the error that its own call alone would have got. Retrying
 * is safe because both calls are idempotent for their owner (a claim renews the owner's own
 * claim; a done mark by the owner is written again).
 */
export class CoalescingIdempotencyStore implements IdempotencyStore {
  readonly #claims: Coalescer<ClaimEntry, ClaimResult>;
  readonly #completes: Coalescer<CompleteEntry, boolean>;

  constructor(private readonly store: BatchingIdempotencyStore) {
    this.#claims = new Coalescer(
      (entries) => store.claimMany(entries),
      (e) => store.claim(e.key, e.owner, e.leaseMs),
    );
    this.#completes = new Coalescer(
      (entries) => store.completeMany(entries),
      (e) => store.complete(e.key, e.owner, e.result, e.ttlMs),
    );
  }

  claim(key: string, owner: string, leaseMs: number): Promise<ClaimResult> {
    return this.#claims.submit({ key, owner, leaseMs });
  }

  renew(key: string, owner: string, leaseMs: number): boolean | Promise<boolean> {
    return this.store.renew(key, owner, leaseMs);
  }

  complete(key: string, owner: string, result: unknown, ttlMs?: number): Promise<boolean> {
    return this.#completes.submit(
      ttlMs === undefined ? { key, owner, result } : { key, owner, result, ttlMs },
    );
  }

  release(key: string, owner: string): void | Promise<void> {
    return this.store.release(key, owner);
  }

  async close(): Promise<void> {
    await this.store.close?.();
  }
}

interface Waiter<E, R> {
  entry: E;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/** One kind of call, gathered: at most one batch in flight, the next one forming behind it. */
class Coalescer<E, R> {
  #waiting: Waiter<E, R>[] = [];
  #inFlight = false;
  #scheduled = false;

  constructor(
    private readonly many: (entries: E[]) => Promise<R[]>,
    private readonly one: (entry: E) => R | Promise<R>,
  ) {}

  submit(entry: E): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#waiting.push({ entry, resolve, reject });
      if (this.#inFlight || this.#scheduled) return;
      this.#scheduled = true;
      // A microtask then a nextTick: the tick runs once the microtask queue is drained, so the
      // calls of every handler this turn started (each a few awaits deep) are in the batch.
      queueMicrotask(() => process.nextTick(this.#sendScheduled));
    });
  }

  readonly #sendScheduled = (): void => {
    this.#scheduled = false;
    if (!this.#inFlight && this.#waiting.length > 0) this.#send();
  };

  #send(): void {
    let batch = this.#waiting;
    if (batch.length <= MAX_IDEMPOTENCY_BATCH) this.#waiting = [];
    else batch = this.#waiting.splice(0, MAX_IDEMPOTENCY_BATCH);
    this.#inFlight = true;
    // #run never rejects: every waiter is settled inside it.
    void this.#run(batch).then(() => {
      this.#inFlight = false;
      if (this.#waiting.length > 0) this.#send();
    });
  }

  async #run(batch: Waiter<E, R>[]): Promise<void> {
    if (batch.length > 1) {
      let results: R[] | undefined;
      try {
        results = await this.many(batch.map((waiter) => waiter.entry));
      } catch {
        // Sent again one by one below, so each caller gets its own answer or error.
      }
      if (results && results.length === batch.length) {
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
        return;
      }
    }
    await Promise.all(batch.map((waiter) => this.#runOne(waiter)));
  }

  async #runOne(waiter: Waiter<E, R>): Promise<void> {
    try {
      waiter.resolve(await this.one(waiter.entry));
    } catch (error) {
      waiter.reject(error);
    }
  }
}
