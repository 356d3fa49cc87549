/**
 * Worker heartbeats (WorkerRegistry) in MySQL / MariaDB (STATE_URL=mysql://...): a row per
 * worker process in `polyqueue_workers` (`?prefix=` changes `polyqueue`), its heartbeat as JSON
 * beside the writer's time in ms, created on first use. Its own small pool, as the pause
 * flags have.
 */
import { byQueueThenId, WORKER_EXPIRY_MS, type WorkerHeartbeat, type WorkerRegistry } from '@polyqueue/core';
import { quoteIdentifier } from './config';
import { createMysqlPool, type Pool, retryOnStaleConnection } from './pool';

export async function createMysqlWorkerRegistry(stateUrl: string): Promise<WorkerRegistry> {
  const url = new URL(stateUrl);
  const prefix = url.searchParams.get('prefix') ?? 'polyqueue';
  if (!/^[A-Za-z0-9_]+$/.test(prefix)) throw new Error('STATE_URL: prefix must be letters, digits or "_"');
  url.search = '';
  const pool = await createMysqlPool(url.toString(), { connectionLimit: 2 });
  const table = quoteIdentifier(`${prefix}_workers`);
  try {
    await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (
      id VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      beat_ms BIGINT NOT NULL,
      heartbeat TEXT NOT NULL,
      PRIMARY KEY (id),
      KEY beat_ms (beat_ms)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return new MysqlWorkerRegistry(pool, table);
}

class MysqlWorkerRegistry implements WorkerRegistry {
  #closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly table: string,
  ) {}

  async #query(sql: string, values: unknown[]): Promise<unknown> {
    const [result] = await retryOnStaleConnection(() => this.pool.query(sql, values));
    return result;
  }

  async beat(heartbeat: WorkerHeartbeat): Promise<void> {
    const at = Date.parse(heartbeat.lastHeartbeat);
    await this.#query(
      `INSERT INTO ${this.table} (id, beat_ms, heartbeat) VALUES (?, ?, ?)
       ON DUPLICATE KEY UPDATE beat_ms = VALUES(beat_ms), heartbeat = VALUES(heartbeat)`,
      [heartbeat.id, at, JSON.stringify(heartbeat)],
    );
    // Rows of workers that died without removing themselves go after ten expiry periods.
    await this.#query(`DELETE FROM ${this.table} WHERE beat_ms <= ?`, [at - 10 * WORKER_EXPIRY_MS]);
  }

  async live(now = Date.now()): Promise<WorkerHeartbeat[]> {
    const rows = (await this.#query(`SELECT heartbeat FROM ${this.table} WHERE beat_ms > ?`, [
      now - WORKER_EXPIRY_MS,
    ])) as { heartbeat: string }[];
    return rows.map((row) => JSON.parse(row.heartbeat) as WorkerHeartbeat).sort(byQueueThenId);
  }

  async remove(id: string): Promise<void> {
    await this.#query(`DELETE FROM ${this.table} WHERE id = ?`, [id]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}
