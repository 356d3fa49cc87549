/**
 * Rate and concurrency limits (QueueLimits) in MySQL / MariaDB (STATE_URL=mysql://...), in two
 * tables created on first use (`?prefix=` changes `polyqueue`):
 *
 *   polyqueue_queue_limits   one row per limited queue: its limits and its token bucket
 *   polyqueue_queue_slots    one row per running job holding a concurrency slot, with its key
 *                            and the time (ms) its lease runs out
 *
 * An admission is one transaction that first locks the queue's limits row (SELECT ... FOR
 * UPDATE), so admissions to one queue take turns across every worker and host, and reads the
 * server's clock there, so hosts with skewed clocks share one bucket. Its own small pool beside
 * the state store's.
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
import { quoteIdentifier } from './config';
import { createMysqlPool, inTransaction, type Pool, retryOnStaleConnection } from './pool';

interface LimitsRow {
  queue: string;
  rate_per_sec: number | null;
  concurrency: number | null;
  per_key: number | null;
  tokens: number | null;
  updated_at: string | number | null;
}

export async function createMysqlQueueLimits(stateUrl: string): Promise<QueueLimits> {
  const url = new URL(stateUrl);
  const prefix = url.searchParams.get('prefix') ?? 'polyqueue';
  if (!/^[A-Za-z0-9_]+$/.test(prefix)) throw new Error('STATE_URL: prefix must be letters, digits or "_"');
  url.search = '';
  const pool = await createMysqlPool(url.toString(), { connectionLimit: 4 });
  const limits = quoteIdentifier(`${prefix}_queue_limits`);
  const slots = quoteIdentifier(`${prefix}_queue_slots`);
  try {
    await pool.query(`CREATE TABLE IF NOT EXISTS ${limits} (
      queue VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      rate_per_sec DOUBLE NULL,
      concurrency INT NULL,
      per_key INT NULL,
      tokens DOUBLE NULL,
      updated_at BIGINT NULL,
      PRIMARY KEY (queue)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
    await pool.query(`CREATE TABLE IF NOT EXISTS ${slots} (
      queue VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      holder VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      job_key VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
      expires_at BIGINT NOT NULL,
      PRIMARY KEY (queue, holder),
      KEY by_expiry (queue, expires_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return new MysqlQueueLimits(pool, limits, slots);
}

/** The server's clock in ms since the epoch (sessions run in UTC). */
const NOW_MS = 'CAST(ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000) AS SIGNED)';

class MysqlQueueLimits implements QueueLimits {
  #closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly limitsTable: string,
    private readonly slotsTable: string,
  ) {}

  async limits(): Promise<ReadonlyMap<string, Limits>> {
    const [rows] = await retryOnStaleConnection(() =>
      this.pool.query(`SELECT queue, rate_per_sec, concurrency, per_key FROM ${this.limitsTable}`),
    );
    return new Map((rows as LimitsRow[]).map((row) => [row.queue, limitsOfColumns(row)]));
  }

  async setLimits(queue: string, limits: Limits): Promise<void> {
    assertLimits(queue, limits);
    const kept = limitsOrNone(limits);
    // A change of limits keeps the bucket's tokens: no burst for having changed the rate.
    await retryOnStaleConnection(() =>
      kept
        ? this.pool.query(
            `INSERT INTO ${this.limitsTable} (queue, rate_per_sec, concurrency, per_key) VALUES (?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE rate_per_sec = VALUES(rate_per_sec), concurrency = VALUES(concurrency),
               per_key = VALUES(per_key)`,
            [queue, kept.ratePerSec ?? null, kept.concurrency ?? null, kept.perKeyConcurrency ?? null],
          )
        : this.pool.query(`DELETE FROM ${this.limitsTable} WHERE queue = ?`, [queue]),
    );
  }

  async admit(queue: string, request: AdmissionRequest): Promise<Admission> {
    return inTransaction(this.pool, async (connection) => {
      // One round trip: the locked row, the server's clock, and the slots held now.
      const [rows] = await connection.query(
        `SELECT l.*, ${NOW_MS} AS now_ms,
           (SELECT COUNT(*) FROM ${this.slotsTable} s
             WHERE s.queue = l.queue AND s.expires_at > ${NOW_MS}) AS running,
           (SELECT COUNT(*) FROM ${this.slotsTable} s
             WHERE s.queue = l.queue AND s.expires_at > ${NOW_MS} AND s.job_key = ?) AS same_key
         FROM ${this.limitsTable} l WHERE l.queue = ? FOR UPDATE`,
        [request.key ?? null, queue],
      );
      type Counted = LimitsRow & { now_ms: string; running: string; same_key: string };
      const row = (rows as Counted[])[0];
      if (!row) return { granted: true, slot: false };
      const limits = limitsOfColumns(row);
      const now = Number(row.now_ms);
      const perKey = request.key !== undefined ? limits.perKeyConcurrency : undefined;
      if (limits.concurrency !== undefined || perKey !== undefined) {
        const { running, same_key: sameKey } = row;
        if (limits.concurrency !== undefined && Number(running) >= limits.concurrency)
          return { granted: false, retryInMs: SLOT_RETRY_MS };
        if (perKey !== undefined && Number(sameKey) >= perKey)
          return { granted: false, retryInMs: SLOT_RETRY_MS };
      }
      if (limits.ratePerSec !== undefined) {
        const bucket =
          row.tokens !== null && row.updated_at !== null
            ? { tokens: Number(row.tokens), updatedAt: Number(row.updated_at) }
            : undefined;
        const step = takeToken(bucket, limits.ratePerSec, now);
        await connection.query(`UPDATE ${this.limitsTable} SET tokens = ?, updated_at = ? WHERE queue = ?`, [
          step.tokens,
          now,
          queue,
        ]);
        if (!step.taken) return { granted: false, retryInMs: step.retryInMs };
      }
      if (limits.concurrency === undefined && perKey === undefined) return { granted: true, slot: false };
      // The slots of dead workers go as a new one is taken, so the table stays as small as the limit.
      await connection.query(`DELETE FROM ${this.slotsTable} WHERE queue = ? AND expires_at <= ?`, [
        queue,
        now,
      ]);
      await connection.query(
        `REPLACE INTO ${this.slotsTable} (queue, holder, job_key, expires_at) VALUES (?, ?, ?, ?)`,
        [queue, request.holder, request.key ?? null, now + Math.ceil(request.leaseMs)],
      );
      return { granted: true, slot: true };
    });
  }

  async renew(queue: string, holders: readonly string[], leaseMs: number): Promise<void> {
    if (holders.length === 0) return;
    await retryOnStaleConnection(() =>
      this.pool.query(
        `UPDATE ${this.slotsTable} SET expires_at = ${NOW_MS} + ? WHERE queue = ? AND holder IN (?)`,
        [Math.ceil(leaseMs), queue, holders],
      ),
    );
  }

  async release(queue: string, holder: string): Promise<void> {
    await retryOnStaleConnection(() =>
      this.pool.query(`DELETE FROM ${this.slotsTable} WHERE queue = ? AND holder = ?`, [queue, holder]),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}
