/**
 * Job attempt histories (core's job-attempts.ts) in the state file: one row per attempt, keyed
 * by job, start and number, so an attempt's end replaces its start (an upsert). A write that
 * could take a job past ATTEMPTS_KEPT (attemptWriteTrims) also deletes its oldest rows, in the
 * same transaction. The state store runs these writes through its WriteBatcher, so they share a
 * commit with the job record's status write of the same event-loop turn.
 */
import {
  ATTEMPTS_KEPT,
  type AttemptColumns,
  attemptFromColumns,
  attemptHistory,
  attemptToColumns,
  attemptWriteTrims,
  type JobAttempt,
} from '@polyqueue/core';
import type { Db } from './database';

export class SqliteJobAttempts {
  readonly #upsert;
  readonly #trim;
  readonly #list;

  constructor(db: Db) {
    db.exec(`CREATE TABLE IF NOT EXISTS polyqueue_job_attempts (
      job_id TEXT NOT NULL,
      started_at TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      ended_at TEXT,
      duration_ms INTEGER,
      worker TEXT,
      outcome TEXT,
      error TEXT,
      stack TEXT,
      PRIMARY KEY (job_id, started_at, attempt)
    )`);
    this.#upsert = db.prepare<[AttemptColumns]>(
      `INSERT INTO polyqueue_job_attempts (job_id, started_at, attempt, ended_at, duration_ms, worker, outcome, error, stack)
       VALUES (@job_id, @started_at, @attempt, @ended_at, @duration_ms, @worker, @outcome, @error, @stack)
       ON CONFLICT (job_id, started_at, attempt) DO UPDATE SET ended_at = excluded.ended_at,
         duration_ms = excluded.duration_ms, worker = excluded.worker, outcome = excluded.outcome,
         error = excluded.error, stack = excluded.stack`,
    );
    this.#trim = db.prepare<[string, string, number]>(
      `DELETE FROM polyqueue_job_attempts WHERE job_id = ? AND (started_at, attempt) NOT IN (
         SELECT started_at, attempt FROM polyqueue_job_attempts WHERE job_id = ?
         ORDER BY started_at DESC, attempt DESC LIMIT ?)`,
    );
    this.#list = db.prepare<[string, number], AttemptColumns>(
      `SELECT * FROM (SELECT * FROM polyqueue_job_attempts WHERE job_id = ?
         ORDER BY started_at DESC, attempt DESC LIMIT ?) ORDER BY started_at, attempt`,
    );
  }

  /** The write, as a WriteBatcher runs it (only SQL: it may run twice). */
  write(jobId: string, attempt: JobAttempt): void {
    this.#upsert.run(attemptToColumns(jobId, attempt));
    if (attemptWriteTrims(attempt)) this.#trim.run(jobId, jobId, ATTEMPTS_KEPT);
  }

  list(jobId: string): JobAttempt[] {
    return attemptHistory(this.#list.all(jobId, ATTEMPTS_KEPT).map(attemptFromColumns));
  }
}
