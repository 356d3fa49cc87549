/**
 * Throughput and waiting time per queue and minute (MetricsHistory) in MySQL / MariaDB
 * (STATE_URL=mysql://...): a row per (queue, minute) in `polyqueue_metrics_history` (`?prefix=`
 * changes `polyqueue`), created on first use. A flush is one multi-row INSERT ... ON DUPLICATE
 * KEY UPDATE that adds the counts and keeps the greater wait: one round trip. Its own small
 * pool, as the pause flags have.
 */
import type { MetricsHistory, MinuteSample } from '@polyqueue/core';
import { quoteIdentifier } from './config';
import { createMysqlPool, type Pool, retryOnStaleConnection } from './pool';

export async function createMysqlMetricsHistory(stateUrl: string): Promise<MetricsHistory> {
  const url = new URL(stateUrl);
  const prefix = url.searchParams.get('prefix') ?? 'polyqueue';
  if (!/^[A-Za-z0-9_]+$/.test(prefix)) throw new Error('STATE_URL: prefix must be letters, digits or "_"');
  url.search = '';
  const pool = await createMysqlPool(url.toString(), { connectionLimit: 2 });
  const table = quoteIdentifier(`${prefix}_metrics_history`);
  try {
    await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (
      queue VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      minute BIGINT NOT NULL,
      completed INT UNSIGNED NOT NULL,
      failed INT UNSIGNED NOT NULL,
      oldest_wait_ms BIGINT NULL,
      PRIMARY KEY (queue, minute),
      KEY minute (minute)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return new MysqlMetricsHistory(pool, table);
}

interface Row {
  queue: string;
  minute: number | string;
  completed: number;
  failed: number;
  oldest_wait_ms: number | string | null;
}

class MysqlMetricsHistory implements MetricsHistory {
  #closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly table: string,
  ) {}

  async #query(sql: string, values: unknown[]): Promise<unknown> {
    const [result] = await retryOnStaleConnection(() => this.pool.query(sql, values));
    return result;
  }

  async record(samples: readonly MinuteSample[]): Promise<void> {
    if (samples.length === 0) return;
    // GREATEST is NULL when either side is: COALESCE keeps the side that has a wait.
    await this.#query(
      `INSERT INTO ${this.table} (queue, minute, completed, failed, oldest_wait_ms) VALUES ?
       ON DUPLICATE KEY UPDATE
         completed = completed + VALUES(completed),
         failed = failed + VALUES(failed),
         oldest_wait_ms = GREATEST(COALESCE(oldest_wait_ms, VALUES(oldest_wait_ms)),
                                   COALESCE(VALUES(oldest_wait_ms), oldest_wait_ms))`,
      [samples.map((s) => [s.queue, s.minute, s.completed, s.failed, s.oldestWaitMs])],
    );
  }

  async read(queue: string, from: number, to: number): Promise<MinuteSample[]> {
    const rows = (await this.#query(
      `SELECT queue, minute, completed, failed, oldest_wait_ms FROM ${this.table}
       WHERE queue = ? AND minute >= ? AND minute < ? ORDER BY minute`,
      [queue, from, to],
    )) as Row[];
    return rows.map((row) => ({
      queue: row.queue,
      minute: Number(row.minute),
      completed: Number(row.completed),
      failed: Number(row.failed),
      oldestWaitMs: row.oldest_wait_ms === null ? null : Number(row.oldest_wait_ms),
    }));
  }

  async prune(before: number): Promise<void> {
    await this.#query(`DELETE FROM ${this.table} WHERE minute < ?`, [before]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}
