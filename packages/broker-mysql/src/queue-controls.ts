/**
 * Pause flags (QueueControls) in MySQL / MariaDB (STATE_URL=mysql://...): a row in
 * `polyqueue_paused_queues` (`?prefix=` changes `polyqueue`) per paused queue, created on first
 * use. Its own small pool beside the state store's, so a worker's poll never waits behind a
 * claim that waits on a row lock.
 */
import { assertControlledQueueName, type QueueControls } from '@polyqueue/core';
import { quoteIdentifier } from './config';
import { affectedRows, createMysqlPool, type Pool, retryOnStaleConnection } from './pool';

export async function createMysqlQueueControls(stateUrl: string): Promise<QueueControls> {
  const url = new URL(stateUrl);
  const prefix = url.searchParams.get('prefix') ?? 'polyqueue';
  if (!/^[A-Za-z0-9_]+$/.test(prefix)) throw new Error('STATE_URL: prefix must be letters, digits or "_"');
  url.search = '';
  const pool = await createMysqlPool(url.toString(), { connectionLimit: 2 });
  const table = quoteIdentifier(`${prefix}_paused_queues`);
  try {
    await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (
      queue VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      paused_at DATETIME(3) NOT NULL,
      PRIMARY KEY (queue)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return new MysqlQueueControls(pool, table);
}

class MysqlQueueControls implements QueueControls {
  #closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly table: string,
  ) {}

  async paused(): Promise<ReadonlySet<string>> {
    const [rows] = await retryOnStaleConnection(() => this.pool.query(`SELECT queue FROM ${this.table}`));
    return new Set((rows as { queue: string }[]).map((row) => row.queue));
  }

  async pause(queue: string): Promise<boolean> {
    assertControlledQueueName(queue);
    const [result] = await retryOnStaleConnection(() =>
      this.pool.query(`INSERT IGNORE INTO ${this.table} (queue, paused_at) VALUES (?, NOW(3))`, [queue]),
    );
    return affectedRows(result) === 1;
  }

  async resume(queue: string): Promise<boolean> {
    const [result] = await retryOnStaleConnection(() =>
      this.pool.query(`DELETE FROM ${this.table} WHERE queue = ?`, [queue]),
    );
    return affectedRows(result) === 1;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}
