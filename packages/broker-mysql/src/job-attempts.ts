/**
 * Job attempt histories (core's job-attempts.ts) in MySQL / MariaDB: the table
 * `<prefix>_job_attempts`, one row per attempt keyed by job, start and number, so an attempt's
 * end replaces its start (INSERT ... ON DUPLICATE KEY UPDATE: one statement per write). A write
 * that could take a job past ATTEMPTS_KEPT (attemptWriteTrims: an attempt that ends dead, or
 * one numbered past the cap) also deletes the job's oldest rows, a second statement.
 */
import {
  ATTEMPTS_KEPT,
  type AttemptColumns,
  attemptFromColumns,
  attemptHistory,
  attemptToColumns,
  attemptWriteTrims,
  type JobAttempt,
  type JobAttemptLog,
} from '@polyqueue/core';
import { quoteIdentifier } from './config';
import { type Pool, retryOnStaleConnection } from './pool';

/** Creates the table (if missing) and answers the store's two attempt methods over it. */
export async function createMysqlJobAttempts(pool: Pool, prefix: string): Promise<JobAttemptLog> {
  const table = quoteIdentifier(`${prefix}_job_attempts`);
  await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (
    job_id VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    started_at DATETIME(3) NOT NULL,
    attempt INT UNSIGNED NOT NULL,
    ended_at DATETIME(3) NULL,
    duration_ms INT UNSIGNED NULL,
    worker VARCHAR(200) NULL,
    outcome VARCHAR(20) NULL,
    error TEXT NULL,
    stack TEXT NULL,
    PRIMARY KEY (job_id, started_at, attempt)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  const query = async (sql: string, values: unknown[]) =>
    (await retryOnStaleConnection(() => pool.query(sql, values)))[0];
  return {
    async recordAttempt(jobId: string, attempt: JobAttempt): Promise<void> {
      const row = attemptToColumns(jobId, attempt);
      const at = (iso: string | null) => (iso === null ? null : new Date(iso));
      await query(
        `INSERT INTO ${table} (job_id, started_at, attempt, ended_at, duration_ms, worker, outcome, error, stack)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE ended_at = VALUES(ended_at), duration_ms = VALUES(duration_ms),
           worker = VALUES(worker), outcome = VALUES(outcome), error = VALUES(error), stack = VALUES(stack)`,
        [
          row.job_id,
          at(row.started_at),
          row.attempt,
          at(row.ended_at),
          row.duration_ms === null ? null : Math.max(0, Math.round(row.duration_ms)),
          row.worker,
          row.outcome,
          row.error,
          row.stack,
        ],
      );
      if (!attemptWriteTrims(attempt)) return;
      // The derived table materializes the kept rows first: MySQL refuses a subquery on the
      // table a DELETE changes, and a LIMIT inside IN.
      await query(
        `DELETE FROM ${table} WHERE job_id = ? AND (started_at, attempt) NOT IN (
           SELECT started_at, attempt FROM (SELECT started_at, attempt FROM ${table} WHERE job_id = ?
             ORDER BY started_at DESC, attempt DESC LIMIT ?) AS kept)`,
        [jobId, jobId, ATTEMPTS_KEPT],
      );
    },

    async listAttempts(jobId: string): Promise<JobAttempt[]> {
      const rows = (await query(
        `SELECT * FROM ${table} WHERE job_id = ? ORDER BY started_at DESC, attempt DESC LIMIT ?`,
        [jobId, ATTEMPTS_KEPT],
      )) as AttemptColumns<Date>[];
      return attemptHistory(rows.map(attemptFromColumns));
    },
  };
}
