/**
 * The SQL of one SQLite queue: the table a producer can INSERT into with plain SQL, its dead
 * letters, and the claim. The raw baseline of the bench (bench/src/baselines/sqlite-raw.ts)
 * runs these same statements.
 */
import type { Priority } from '@polyqueue/core';

export const PRIORITY_RANK: Record<Priority, number> = { high: 0, normal: 1, low: 2 };

/** A row as the claim returns it. */
export interface Row {
  id: number;
  job_type: string;
  payload: string;
  envelope: string | null;
  job_id: string | null;
  attempts: number;
  priority: number;
}

/** The queue table, its indexes and its dead-letter table. */
export function queueTableSql(table: string): string {
  const dead = `${table}_dead`;
  return `
    CREATE TABLE IF NOT EXISTS "${table}" (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      job_type TEXT NOT NULL,
      payload TEXT NOT NULL,
      created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
      envelope TEXT,
      job_id TEXT,
      priority INTEGER NOT NULL DEFAULT 1,
      available_at INTEGER NOT NULL DEFAULT 0,
      attempts INTEGER NOT NULL DEFAULT 0,
      lease_owner TEXT,
      lease_expires_at INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX IF NOT EXISTS "${table}_job_id" ON "${table}" (job_id) WHERE job_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS "${table}_claim" ON "${table}" (priority, id) WHERE lease_owner IS NULL;
    CREATE INDEX IF NOT EXISTS "${table}_leases" ON "${table}" (lease_expires_at) WHERE lease_owner IS NOT NULL;
    CREATE TABLE IF NOT EXISTS "${dead}" (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL,
      job_type TEXT NOT NULL,
      body TEXT NOT NULL,
      reason TEXT NOT NULL,
      dead_at TEXT NOT NULL
    );`;
}

export interface ClaimParams {
  owner: string;
  expires: number;
  now: number;
  limit: number;
}

/**
 * Takes up to @limit rows in one statement, so the read and the lease are atomic under
 * SQLite's write lock: ready rows by priority then age, and rows whose lease expired (their
 * worker died). Each branch stops at @limit through its index, so a claim costs the same on a
 * long queue as on a short one.
 */
export function claimSql(table: string): string {
  return `UPDATE "${table}" SET lease_owner = @owner, lease_expires_at = @expires, attempts = attempts + 1
    WHERE id IN (
      SELECT id FROM (
        SELECT id, priority FROM (
          SELECT id, priority FROM "${table}" WHERE lease_owner IS NULL AND available_at <= @now
          ORDER BY priority, id LIMIT @limit)
        UNION ALL
        SELECT id, priority FROM (
          SELECT id, priority FROM "${table}" WHERE lease_owner IS NOT NULL AND lease_expires_at < @now
          ORDER BY lease_expires_at LIMIT @limit))
      ORDER BY priority, id LIMIT @limit)
    RETURNING id, job_type, payload, envelope, job_id, attempts, priority`;
}
