/**
 * Throughput and waiting time per queue and minute (MetricsHistory) in the state file
 * (STATE_URL=sqlite:<path>): a row per (queue, minute) in `polyqueue_metrics_history`. A flush
 * is one transaction of upserts that add the counts and keep the greater wait. Its own
 * connection beside the state store's, as the pause flags have.
 */
import type { MetricsHistory, MinuteSample } from '@polyqueue/core';
import { type Db, openDatabase } from './database';

interface Row {
  queue: string;
  minute: number;
  completed: number;
  failed: number;
  oldest_wait_ms: number | null;
}

export class SqliteMetricsHistory implements MetricsHistory {
  readonly #db: Db;
  readonly #record: (samples: readonly MinuteSample[]) => void;
  readonly #read;
  readonly #prune;

  constructor(path: string) {
    this.#db = openDatabase(path);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS polyqueue_metrics_history (
      queue TEXT NOT NULL,
      minute INTEGER NOT NULL,
      completed INTEGER NOT NULL,
      failed INTEGER NOT NULL,
      oldest_wait_ms INTEGER,
      PRIMARY KEY (queue, minute)
    );
    CREATE INDEX IF NOT EXISTS polyqueue_metrics_history_minute ON polyqueue_metrics_history (minute)`);
    const upsert = this.#db.prepare<[string, number, number, number, number | null]>(
      `INSERT INTO polyqueue_metrics_history (queue, minute, completed, failed, oldest_wait_ms)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (queue, minute) DO UPDATE SET
         completed = completed + excluded.completed,
         failed = failed + excluded.failed,
         oldest_wait_ms = CASE
           WHEN oldest_wait_ms IS NULL THEN excluded.oldest_wait_ms
           WHEN excluded.oldest_wait_ms IS NULL THEN oldest_wait_ms
           ELSE max(oldest_wait_ms, excluded.oldest_wait_ms) END`,
    );
    this.#record = this.#db.transaction((samples: readonly MinuteSample[]) => {
      for (const s of samples) upsert.run(s.queue, s.minute, s.completed, s.failed, s.oldestWaitMs);
    });
    this.#read = this.#db.prepare<[string, number, number], Row>(
      `SELECT queue, minute, completed, failed, oldest_wait_ms FROM polyqueue_metrics_history
       WHERE queue = ? AND minute >= ? AND minute < ? ORDER BY minute`,
    );
    this.#prune = this.#db.prepare<[number]>('DELETE FROM polyqueue_metrics_history WHERE minute < ?');
  }

  async record(samples: readonly MinuteSample[]): Promise<void> {
    if (samples.length > 0) this.#record(samples);
  }

  async read(queue: string, from: number, to: number): Promise<MinuteSample[]> {
    return this.#read.all(queue, from, to).map((row) => ({
      queue: row.queue,
      minute: row.minute,
      completed: row.completed,
      failed: row.failed,
      oldestWaitMs: row.oldest_wait_ms,
    }));
  }

  async prune(before: number): Promise<void> {
    this.#prune.run(before);
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

export async function createSqliteMetricsHistory(path: string): Promise<MetricsHistory> {
  return new SqliteMetricsHistory(path);
}
