/**
 * Throughput and waiting time per queue and minute, kept for the dashboard's charts
 * (GET /v1/queues/:q/history) in the state store (STATE_URL) for HISTORY_RETENTION_MS.
 *
 * What a minute holds, per queue:
 * - completed: jobs that succeeded in it;
 * - failed: attempts that failed in it, whether retried later (`retrying`) or dead-lettered
 *   (`dead`); a job retried three times then dead counts four. Cancelled jobs and redeliveries
 *   found already done count in neither;
 * - oldestWaitMs: the longest a job had waited when a worker took it in that minute (its first
 *   attempt, from the envelope's createdAt): for a queue served in order that is the age of the
 *   oldest waiting job. null when no worker took a job; a queue nobody takes from has no points
 *   (the dashboard warns of a queue with ready jobs and no live worker).
 *
 * Workers write, batched: a HistoryTally adds counts in memory and flushes them every
 * HISTORY_FLUSH_MS in one record() call (one round trip), never per job. Several processes add
 * to the same minute: counts are summed, the wait is the greatest. Stores: a table in the sqlite
 * file, Redis hashes per hour that expire, a MySQL table, and MemoryMetricsHistory below.
 */
export interface MinuteSample {
  queue: string;
  /** The minute's start, epoch milliseconds (a multiple of MINUTE_MS). */
  minute: number;
  completed: number;
  failed: number;
  oldestWaitMs: number | null;
}

export const MINUTE_MS = 60_000;
export const HISTORY_RETENTION_MS = 48 * 3_600_000;
export const HISTORY_FLUSH_MS = 5_000;
/** How often a writer deletes what is older than HISTORY_RETENTION_MS. */
export const HISTORY_PRUNE_EVERY_MS = 10 * MINUTE_MS;

export interface MetricsHistory {
  /** Adds the counts to each (queue, minute) and keeps the greater wait; one round trip. */
  record(samples: readonly MinuteSample[]): Promise<void>;
  /** A queue's minutes with `from <= minute < to`, oldest first; minutes with nothing are absent. */
  read(queue: string, from: number, to: number): Promise<MinuteSample[]>;
  /** Deletes the minutes before `before` (Redis expires them itself and may do nothing here). */
  prune(before: number): Promise<void>;
  close(): Promise<void>;
}

export const minuteOf = (ms: number): number => ms - (ms % MINUTE_MS);

/** Two samples of one (queue, minute) as one: counts added, the greater wait. */
export function mergeSamples(a: MinuteSample, b: MinuteSample): MinuteSample {
  return {
    queue: a.queue,
    minute: a.minute,
    completed: a.completed + b.completed,
    failed: a.failed + b.failed,
    oldestWaitMs: maxWait(a.oldestWaitMs, b.oldestWaitMs),
  };
}

export function maxWait(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/** MetricsHistory in one process's memory: tests, and a single process. */
export class MemoryMetricsHistory implements MetricsHistory {
  readonly #minutes = new Map<string, MinuteSample>();

  async record(samples: readonly MinuteSample[]): Promise<void> {
    for (const sample of samples) {
      const key = `${sample.queue}\n${sample.minute}`;
      const had = this.#minutes.get(key);
      this.#minutes.set(key, had ? mergeSamples(had, sample) : { ...sample });
    }
  }

  async read(queue: string, from: number, to: number): Promise<MinuteSample[]> {
    return [...this.#minutes.values()]
      .filter((s) => s.queue === queue && s.minute >= from && s.minute < to)
      .sort((a, b) => a.minute - b.minute)
      .map((s) => ({ ...s }));
  }

  async prune(before: number): Promise<void> {
    for (const [key, s] of this.#minutes) if (s.minute < before) this.#minutes.delete(key);
  }

  async close(): Promise<void> {}
}

export interface HistoryTallyOptions {
  flushMs?: number;
  now?: () => number;
  /** A flush that failed; its counts are kept and go with the next one. */
  onError?: (error: unknown) => void;
}

/**
 * A worker's counts in memory, flushed to the history every flushMs in one record() call.
 * A failed flush keeps its counts for the next one, so an outage of the state store loses
 * nothing it outlasts by less than the retention; stop() flushes what is left.
 */
export class HistoryTally {
  readonly #history: MetricsHistory;
  readonly #now: () => number;
  readonly #onError: (error: unknown) => void;
  #pending = new Map<string, MinuteSample>();
  #timer: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();
  #prunedAt = 0;

  constructor(history: MetricsHistory, options: HistoryTallyOptions = {}) {
    this.#history = history;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    this.#timer = setInterval(() => void this.flush(), options.flushMs ?? HISTORY_FLUSH_MS);
    this.#timer.unref();
  }

  completed(queue: string): void {
    this.#add({ queue, minute: minuteOf(this.#now()), completed: 1, failed: 0, oldestWaitMs: null });
  }

  failed(queue: string): void {
    this.#add({ queue, minute: minuteOf(this.#now()), completed: 0, failed: 1, oldestWaitMs: null });
  }

  /** A job taken now that was created at `createdAt` (ISO 8601). */
  waited(queue: string, createdAt: string): void {
    const now = this.#now();
    const created = Date.parse(createdAt);
    if (Number.isNaN(created)) return;
    this.#add({
      queue,
      minute: minuteOf(now),
      completed: 0,
      failed: 0,
      oldestWaitMs: Math.max(0, now - created),
    });
  }

  #add(sample: MinuteSample): void {
    const key = `${sample.queue}\n${sample.minute}`;
    const had = this.#pending.get(key);
    this.#pending.set(key, had ? mergeSamples(had, sample) : sample);
  }

  /** Writes what is pending (one record() call); flushes never overlap. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#flushNow());
    return this.#flushing;
  }

  async #flushNow(): Promise<void> {
    const batch = this.#pending;
    const now = this.#now();
    if (batch.size > 0) {
      this.#pending = new Map();
      try {
        await this.#history.record([...batch.values()]);
      } catch (error) {
        for (const sample of batch.values()) this.#add(sample);
        this.#onError(error);
        return;
      }
    }
    if (now - this.#prunedAt >= HISTORY_PRUNE_EVERY_MS) {
      this.#prunedAt = now;
      await this.#history.prune(now - HISTORY_RETENTION_MS).catch(this.#onError);
    }
  }

  /** Stops the timer and flushes what is left. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
