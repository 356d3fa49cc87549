import { Gauge, type Registry } from 'prom-client';
import { assertControlledQueueName } from './queue-controls';

/**
 * Rate and concurrency limits per queue, cluster-wide: the limits and what enforces them (a
 * token bucket, and leased slots for the jobs running) live in the state store (STATE_URL), so
 * every worker of every host obeys the same numbers, and a change is obeyed at the workers'
 * next read. The worker applies them before a job's handler runs (queue-limit-gate.ts); the
 * API, the CLI and /metrics read and write them through the same port.
 *
 * Implemented beside each state store: sqlite (tables in the state file), Redis (a hash and a
 * Lua script), MySQL (tables, one transaction per admission), and MemoryQueueLimits below.
 */
export interface Limits {
  /** Jobs started per second over the whole cluster (a token bucket); may be fractional. */
  ratePerSec?: number;
  /** Jobs running at once over the whole cluster. */
  concurrency?: number;
  /** Jobs running at once per job `key` (the envelope's `key`); jobs without a key are not counted. */
  perKeyConcurrency?: number;
}

export interface AdmissionRequest {
  /** Unique per admission: the slot it takes is renewed and released under this name. */
  holder: string;
  /** The job's `key`, for perKeyConcurrency. */
  key?: string;
  /** How long the slot stays taken without renew(): a dead worker's slots come back after this. */
  leaseMs: number;
}

/** granted: may run now (slot: a concurrency slot was taken, renew and release it); else wait. */
export type Admission = { granted: true; slot: boolean } | { granted: false; retryInMs: number };

export interface QueueLimits {
  /** Every queue's limits, read in one round trip; a queue without limits is absent. */
  limits(): Promise<ReadonlyMap<string, Limits>>;
  /** Replaces the queue's limits (an absent field has no limit; `{}` clears them all). */
  setLimits(queue: string, limits: Limits): Promise<void>;
  /**
   * Atomically, against the limits stored now: grants the job a token (ratePerSec) and a slot
   * (concurrency, perKeyConcurrency) when all are free, else says how long to wait first.
   * Slots whose lease ran out (a worker that died) are freed first.
   */
  admit(queue: string, request: AdmissionRequest): Promise<Admission>;
  /** Extends the leases of these slots (the jobs still run). */
  renew(queue: string, holders: readonly string[], leaseMs: number): Promise<void>;
  /** Frees the slot: the job has ended. */
  release(queue: string, holder: string): Promise<void>;
  /** Releases the store's connection; safe to call twice. */
  close(): Promise<void>;
}

/** How soon a job refused a concurrency slot asks again (a slot frees when any job ends). */
export const SLOT_RETRY_MS = 100;

/**
 * The bucket's size: how many tokens unused time may save up. Small, so no one-second window
 * sees more than the rate plus this; at least 2 below 40/s, so a token that becomes free while
 * a worker's request is on its way is not lost; 1/20 of a second's tokens above.
 */
export function bucketCapacity(ratePerSec: number): number {
  return Math.max(1, Math.min(ratePerSec, 2), ratePerSec / 20);
}

/**
 * The token bucket's step, the same in every store: refills for the time since `updatedAt`,
 * then takes a token when one is there. A new bucket holds one token.
 */
export function takeToken(
  bucket: { tokens: number; updatedAt: number } | undefined,
  ratePerSec: number,
  now: number,
): { taken: boolean; tokens: number; retryInMs: number } {
  const capacity = bucketCapacity(ratePerSec);
  const saved = bucket ? bucket.tokens + (Math.max(0, now - bucket.updatedAt) * ratePerSec) / 1000 : 1;
  const tokens = Math.min(capacity, saved);
  if (tokens >= 1) return { taken: true, tokens: tokens - 1, retryInMs: 0 };
  return { taken: false, tokens, retryInMs: Math.max(1, Math.ceil(((1 - tokens) * 1000) / ratePerSec)) };
}

/** The limits with only the fields that limit something (a store keeps nothing else). */
export function limitsOrNone(limits: Limits): Limits | undefined {
  const kept: Limits = {};
  if (limits.ratePerSec !== undefined) kept.ratePerSec = limits.ratePerSec;
  if (limits.concurrency !== undefined) kept.concurrency = limits.concurrency;
  if (limits.perKeyConcurrency !== undefined) kept.perKeyConcurrency = limits.perKeyConcurrency;
  return Object.keys(kept).length > 0 ? kept : undefined;
}

/** The limit columns of the SQL stores' polyqueue_queue_limits table (sqlite and MySQL share it). */
export interface LimitColumns {
  rate_per_sec: number | string | null;
  concurrency: number | string | null;
  per_key: number | string | null;
}

/** A polyqueue_queue_limits row as Limits (NULL: no limit; MySQL may hand DECIMAL as text). */
export function limitsOfColumns(row: LimitColumns): Limits {
  const limits: Limits = {};
  if (row.rate_per_sec !== null) limits.ratePerSec = Number(row.rate_per_sec);
  if (row.concurrency !== null) limits.concurrency = Number(row.concurrency);
  if (row.per_key !== null) limits.perKeyConcurrency = Number(row.per_key);
  return limits;
}

/**
 * Why these limits cannot be stored, or undefined: a rate must be a positive number, a
 * concurrency a positive integer (0 would stop the queue: that is what pause is for).
 */
export function invalidLimits(limits: Record<string, unknown>): string | undefined {
  const rate = limits.ratePerSec;
  if (rate !== undefined && (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0 || rate > 1e6))
    return `ratePerSec must be a number above 0 and at most 1000000 (got ${JSON.stringify(rate)})`;
  for (const field of ['concurrency', 'perKeyConcurrency'] as const) {
    const value = limits[field];
    if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 1e6))
      return `${field} must be a whole number from 1 to 1000000 (got ${JSON.stringify(value)})`;
  }
  return undefined;
}

/** Throws the reason when the limits are invalid; every store calls it before writing. */
export function assertLimits(queue: string, limits: Limits): void {
  assertControlledQueueName(queue);
  const reason = invalidLimits(limits as Record<string, unknown>);
  if (reason) throw new Error(reason);
}

interface MemorySlot {
  key: string | undefined;
  expiresAt: number;
}

/** QueueLimits in one process's memory: tests, and BROKER=memory with one process. */
export class MemoryQueueLimits implements QueueLimits {
  readonly #limits = new Map<string, Limits>();
  readonly #buckets = new Map<string, { tokens: number; updatedAt: number }>();
  readonly #slots = new Map<string, Map<string, MemorySlot>>();
  /** Set to an error to make every call fail (tests of a state store outage). */
  failWith: Error | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  async limits(): Promise<ReadonlyMap<string, Limits>> {
    this.#check();
    return new Map([...this.#limits].map(([queue, limits]) => [queue, { ...limits }]));
  }

  async setLimits(queue: string, limits: Limits): Promise<void> {
    this.#check();
    assertLimits(queue, limits);
    const kept = limitsOrNone(limits);
    if (kept) this.#limits.set(queue, kept);
    else this.#limits.delete(queue);
  }

  async admit(queue: string, request: AdmissionRequest): Promise<Admission> {
    this.#check();
    const limits = this.#limits.get(queue);
    if (!limits) return { granted: true, slot: false };
    const now = this.now();
    const slots = this.#slots.get(queue) ?? new Map<string, MemorySlot>();
    this.#slots.set(queue, slots);
    for (const [holder, slot] of slots) if (slot.expiresAt <= now) slots.delete(holder);
    const perKey = request.key !== undefined ? limits.perKeyConcurrency : undefined;
    if (limits.concurrency !== undefined && slots.size >= limits.concurrency)
      return { granted: false, retryInMs: SLOT_RETRY_MS };
    if (perKey !== undefined) {
      let sameKey = 0;
      for (const slot of slots.values()) if (slot.key === request.key) sameKey += 1;
      if (sameKey >= perKey) return { granted: false, retryInMs: SLOT_RETRY_MS };
    }
    if (limits.ratePerSec !== undefined) {
      const step = takeToken(this.#buckets.get(queue), limits.ratePerSec, now);
      this.#buckets.set(queue, { tokens: step.tokens, updatedAt: now });
      if (!step.taken) return { granted: false, retryInMs: step.retryInMs };
    }
    if (limits.concurrency === undefined && perKey === undefined) return { granted: true, slot: false };
    slots.set(request.holder, { key: request.key, expiresAt: now + request.leaseMs });
    return { granted: true, slot: true };
  }

  async renew(queue: string, holders: readonly string[], leaseMs: number): Promise<void> {
    this.#check();
    const slots = this.#slots.get(queue);
    const expiresAt = this.now() + leaseMs;
    for (const holder of holders) {
      const slot = slots?.get(holder);
      if (slot) slot.expiresAt = expiresAt;
    }
  }

  async release(queue: string, holder: string): Promise<void> {
    this.#check();
    this.#slots.get(queue)?.delete(holder);
  }

  async close(): Promise<void> {}

  #check(): void {
    if (this.failWith) throw this.failWith;
  }
}

/**
 * polyqueue_queue_rate_limit{queue} (jobs per second) and
 * polyqueue_queue_concurrency_limit{queue} (jobs at once), read from the state store at scrape
 * time (one read); a queue without that limit has no sample, nor does an unreachable store.
 */
export function registerQueueLimitGauges(
  registry: Registry,
  limits: Pick<QueueLimits, 'limits'>,
  queues: readonly string[],
): void {
  let reading: Promise<ReadonlyMap<string, Limits> | undefined> | undefined;
  // Both gauges are collected in one scrape, at once: the read in flight serves them both. It is
  // forgotten as soon as it settles, so the next scrape reads again (a timed cache served a
  // scrape right after a change the limits from before it).
  const read = () => {
    reading ??= limits
      .limits()
      .then(
        (all) => all,
        () => undefined,
      )
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };
  const gauge = (name: string, help: string, field: keyof Limits) =>
    new Gauge({
      name,
      help,
      labelNames: ['queue'],
      registers: [registry],
      async collect() {
        this.reset();
        const all = await read();
        for (const queue of queues) {
          const value = all?.get(queue)?.[field];
          if (value !== undefined) this.set({ queue }, value);
        }
      },
    });
  gauge(
    'polyqueue_queue_rate_limit',
    'Jobs started per second allowed on a queue, cluster-wide',
    'ratePerSec',
  );
  gauge(
    'polyqueue_queue_concurrency_limit',
    'Jobs allowed to run at once on a queue, cluster-wide',
    'concurrency',
  );
}
