import type { Db } from './database';
import { type ClaimParams, claimSql, queueTableSql, type Row } from './schema';

/** The prepared statements of one queue table and its dead-letter table (created if missing). */
export class QueueTable {
  readonly insert;
  readonly claim;
  readonly ack;
  readonly ackMany;
  readonly giveBack;
  readonly retry;
  readonly extend;
  readonly toDead;
  readonly stats;
  readonly deadCount;
  readonly deadList;
  readonly deadTake;
  readonly deadPurge;

  constructor(
    db: Db,
    readonly table: string,
  ) {
    const dead = `${table}_dead`;
    db.exec(queueTableSql(table));
    this.insert = db.prepare(
      // A job id already in the queue is not added again (as BullMQ does with a job id): a
      // producer that publishes again after a crash, or a migration run twice, adds nothing.
      `INSERT OR IGNORE INTO "${table}" (job_type, payload, envelope, job_id, priority, available_at) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    // One statement, so the read and the lease are atomic under SQLite's write lock. Rows whose
    // lease expired (their worker died) are claimable again.
    this.claim = db.prepare<ClaimParams, Row>(claimSql(table));
    this.ack = db.prepare(`DELETE FROM "${table}" WHERE id = ? AND lease_owner = ?`);
    // Many acks or give-backs in one statement: the ids as a JSON array, the owner's lease checked.
    this.ackMany = db.prepare<[string, string]>(
      `DELETE FROM "${table}" WHERE lease_owner = ? AND id IN (SELECT value FROM json_each(?))`,
    );
    // Claimed rows never handed to a handler: due now, and the claim's attempt not counted.
    this.giveBack = db.prepare<[string, string]>(
      `UPDATE "${table}" SET lease_owner = NULL, lease_expires_at = 0, attempts = attempts - 1
       WHERE lease_owner = ? AND id IN (SELECT value FROM json_each(?))`,
    );
    this.retry = db.prepare(
      `UPDATE "${table}" SET lease_owner = NULL, lease_expires_at = 0, available_at = ? WHERE id = ? AND lease_owner = ?`,
    );
    this.extend = db.prepare(`UPDATE "${table}" SET lease_expires_at = ? WHERE id = ? AND lease_owner = ?`);
    this.toDead = db.prepare(
      `INSERT INTO "${dead}" (id, job_type, body, reason, dead_at) VALUES (?, ?, ?, ?, ?)`,
    );
    this.stats = db.prepare<{ now: number }, { ready: number; inFlight: number; delayed: number }>(
      `SELECT
         COALESCE(SUM((lease_owner IS NULL AND available_at <= @now) OR (lease_owner IS NOT NULL AND lease_expires_at < @now)), 0) AS ready,
         COALESCE(SUM(lease_owner IS NOT NULL AND lease_expires_at >= @now), 0) AS inFlight,
         COALESCE(SUM(lease_owner IS NULL AND available_at > @now), 0) AS delayed
       FROM "${table}"`,
    );
    this.deadCount = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM "${dead}"`);
    this.deadList = db.prepare<[number], { id: string; body: string; reason: string; dead_at: string }>(
      `SELECT id, body, reason, dead_at FROM "${dead}" ORDER BY seq LIMIT ?`,
    );
    this.deadTake = db.prepare<[string], { seq: number; id: string; job_type: string; body: string }>(
      `DELETE FROM "${dead}" WHERE id = ? RETURNING seq, id, job_type, body`,
    );
    this.deadPurge = db.prepare(`DELETE FROM "${dead}"`);
  }
}
