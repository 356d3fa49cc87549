/**
 * Schedules (ScheduleStore) in MySQL / MariaDB (STATE_URL=mysql://...): a row per schedule in
 * `polyqueue_schedules` (`?prefix=` changes `polyqueue`), its definition as JSON, created on
 * first use. Its own small pool beside the state store's, as for the pause flags.
 */
import type { Schedule, ScheduleStore } from '@polyqueue/core';
import { quoteIdentifier } from './config';
import { affectedRows, createMysqlPool, type Pool, retryOnStaleConnection } from './pool';

export async function createMysqlScheduleStore(stateUrl: string): Promise<ScheduleStore> {
  const url = new URL(stateUrl);
  const prefix = url.searchParams.get('prefix') ?? 'polyqueue';
  if (!/^[A-Za-z0-9_]+$/.test(prefix)) throw new Error('STATE_URL: prefix must be letters, digits or "_"');
  url.search = '';
  const pool = await createMysqlPool(url.toString(), { connectionLimit: 2 });
  const table = quoteIdentifier(`${prefix}_schedules`);
  try {
    await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (
      name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      definition MEDIUMTEXT NOT NULL,
      PRIMARY KEY (name)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return new MysqlScheduleStore(pool, table);
}

class MysqlScheduleStore implements ScheduleStore {
  #closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly table: string,
  ) {}

  async list(): Promise<Schedule[]> {
    const [rows] = await retryOnStaleConnection(() =>
      this.pool.query(`SELECT definition FROM ${this.table} ORDER BY name`),
    );
    return (rows as { definition: string }[]).map((row) => JSON.parse(row.definition) as Schedule);
  }

  async put(schedule: Schedule): Promise<void> {
    await retryOnStaleConnection(() =>
      this.pool.query(
        `INSERT INTO ${this.table} (name, definition) VALUES (?, ?) ON DUPLICATE KEY UPDATE definition = VALUES(definition)`,
        [schedule.name, JSON.stringify(schedule)],
      ),
    );
  }

  async delete(name: string): Promise<boolean> {
    const [result] = await retryOnStaleConnection(() =>
      this.pool.query(`DELETE FROM ${this.table} WHERE name = ?`, [name]),
    );
    return affectedRows(result) === 1;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}
