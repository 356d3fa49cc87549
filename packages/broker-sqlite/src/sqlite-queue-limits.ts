/**
 * Rate and concurrency limits (QueueLimits) in the state file (STATE_URL=sqlite:<path>):
 *
 *   polyqueue_queue_limits   one row per limited queue: its limits and its token bucket
 *                            (tokens, updated_at in ms)
 *   polyqueue_queue_slots    one row per running job holding a concurrency slot, with its key
 *                            and the time its lease runs out
 *
 * An admission is one IMMEDIATE transaction (free the expired slots, count, take a token,
 * insert the slot), so every process on the host sharing the file takes turns on the write
 * lock and none sees a half-taken token. Time is this host's clock, the same for every
 * process sharing the file. Its own connection beside the state store's.
 */
import {
  type Admission,
  type AdmissionRequest,
  assertLimits,
  type Limits,
  limitsOfColumns,
  limitsOrNone,
  type QueueLimits,
  SLOT_RETRY_MS,
  takeToken,
} from '@polyqueue/core';
import type Database from 'better-sqlite3';
import { type Db, openDatabase } from './database';

interface LimitsRow {
  queue: string;
  rate_per_sec: number | null;
  concurrency: number | null;
  per_key: number | null;
  tokens: number | null;
  updated_at: number | null;
}

export class SqliteQueueLimits implements QueueLimits {
  readonly #db: Db;
  readonly #all;
  readonly #one;
  readonly #put;
  readonly #clear;
  readonly #expire;
  readonly #count;
  readonly #countKey;
  readonly #bucket;
  readonly #take;
  readonly #renew;
  readonly #release;
  readonly #admit: Database.Transaction<(queue: string, request: AdmissionRequest) => Admission>;

  constructor(
    path: string,
    private readonly now: () => number = Date.now,
  ) {
    this.#db = openDatabase(path);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS polyqueue_queue_limits (
      queue TEXT PRIMARY KEY,
      rate_per_sec REAL,
      concurrency INTEGER,
      per_key INTEGER,
      tokens REAL,
      updated_at INTEGER
    );
    CREATE TABLE IF NOT EXISTS polyqueue_queue_slots (
      queue TEXT NOT NULL,
      holder TEXT NOT NULL,
      job_key TEXT,
      expires_at INTEGER NOT NULL,
      PRIMARY KEY (queue, holder)
    )`);
    this.#all = this.#db.prepare<[], LimitsRow>('SELECT * FROM polyqueue_queue_limits');
    this.#one = this.#db.prepare<[string], LimitsRow>('SELECT * FROM polyqueue_queue_limits WHERE queue = ?');
    // A change of limits keeps the bucket's tokens: no burst for having changed the rate.
    this.#put = this.#db.prepare<[string, number | null, number | null, number | null]>(
      `INSERT INTO polyqueue_queue_limits (queue, rate_per_sec, concurrency, per_key) VALUES (?, ?, ?, ?)
       ON CONFLICT (queue) DO UPDATE SET rate_per_sec = excluded.rate_per_sec,
         concurrency = excluded.concurrency, per_key = excluded.per_key`,
    );
    this.#clear = this.#db.prepare<[string]>('DELETE FROM polyqueue_queue_limits WHERE queue = ?');
    this.#expire = this.#db.prepare<[string, number]>(
      'DELETE FROM polyqueue_queue_slots WHERE queue = ? AND expires_at <= ?',
    );
    this.#count = this.#db
      .prepare<[string], number>('SELECT COUNT(*) FROM polyqueue_queue_slots WHERE queue = ?')
      .pluck();
    this.#countKey = this.#db
      .prepare<[string, string], number>(
        'SELECT COUNT(*) FROM polyqueue_queue_slots WHERE queue = ? AND job_key = ?',
      )
      .pluck();
    this.#bucket = this.#db.prepare<[number, number, string]>(
      'UPDATE polyqueue_queue_limits SET tokens = ?, updated_at = ? WHERE queue = ?',
    );
    this.#take = this.#db.prepare<[string, string, string | null, number]>(
      'INSERT OR REPLACE INTO polyqueue_queue_slots (queue, holder, job_key, expires_at) VALUES (?, ?, ?, ?)',
    );
    this.#renew = this.#db.prepare<[number, string, string]>(
      'UPDATE polyqueue_queue_slots SET expires_at = ? WHERE queue = ? AND holder = ?',
    );
    this.#release = this.#db.prepare<[string, string]>(
      'DELETE FROM polyqueue_queue_slots WHERE queue = ? AND holder = ?',
    );
    this.#admit = this.#db.transaction((queue: string, request: AdmissionRequest): Admission => {
      const row = this.#one.get(queue);
      if (!row) return { granted: true, slot: false };
      const now = this.now();
      this.#expire.run(queue, now);
      const perKey = request.key !== undefined ? row.per_key : null;
      if (row.concurrency !== null && this.#count.get(queue)! >= row.concurrency)
        return { granted: false, retryInMs: SLOT_RETRY_MS };
      if (perKey !== null && this.#countKey.get(queue, request.key!)! >= perKey)
        return { granted: false, retryInMs: SLOT_RETRY_MS };
      if (row.rate_per_sec !== null) {
        const bucket =
          row.tokens !== null && row.updated_at !== null
            ? { tokens: row.tokens, updatedAt: row.updated_at }
            : undefined;
        const step = takeToken(bucket, row.rate_per_sec, now);
        this.#bucket.run(step.tokens, now, queue);
        if (!step.taken) return { granted: false, retryInMs: step.retryInMs };
      }
      if (row.concurrency === null && perKey === null) return { granted: true, slot: false };
      this.#take.run(queue, request.holder, request.key ?? null, now + request.leaseMs);
      return { granted: true, slot: true };
    });
  }

  async limits(): Promise<ReadonlyMap<string, Limits>> {
    return new Map(this.#all.all().map((row) => [row.queue, limitsOfColumns(row)]));
  }

  async setLimits(queue: string, limits: Limits): Promise<void> {
    assertLimits(queue, limits);
    const kept = limitsOrNone(limits);
    if (!kept) {
      this.#clear.run(queue);
      return;
    }
    this.#put.run(queue, kept.ratePerSec ?? null, kept.concurrency ?? null, kept.perKeyConcurrency ?? null);
  }

  async admit(queue: string, request: AdmissionRequest): Promise<Admission> {
    // IMMEDIATE: take the write lock before reading, so two processes cannot both see a free slot.
    return this.#admit.immediate(queue, request);
  }

  async renew(queue: string, holders: readonly string[], leaseMs: number): Promise<void> {
    const expiresAt = this.now() + leaseMs;
    this.#db.transaction(() => {
      for (const holder of holders) this.#renew.run(expiresAt, queue, holder);
    })();
  }

  async release(queue: string, holder: string): Promise<void> {
    this.#release.run(queue, holder);
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

export async function createSqliteQueueLimits(path: string): Promise<QueueLimits> {
  return new SqliteQueueLimits(path);
}
