/**
 * Schedules (ScheduleStore) in the state file (STATE_URL=sqlite:<path>): a row per schedule in
 * `polyqueue_schedules`, its definition as JSON. Every process on the host opens the same file,
 * so a schedule created through one API replica is what every replica's scheduler reads.
 */
import type { Schedule, ScheduleStore } from '@polyqueue/core';
import { type Db, openDatabase } from './database';

export class SqliteScheduleStore implements ScheduleStore {
  readonly #db: Db;
  readonly #list;
  readonly #put;
  readonly #delete;

  constructor(path: string) {
    this.#db = openDatabase(path);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS polyqueue_schedules (
      name TEXT PRIMARY KEY,
      definition TEXT NOT NULL
    )`);
    this.#list = this.#db.prepare<[], { definition: string }>(
      'SELECT definition FROM polyqueue_schedules ORDER BY name',
    );
    this.#put = this.#db.prepare<[string, string]>(
      'INSERT INTO polyqueue_schedules (name, definition) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET definition = excluded.definition',
    );
    this.#delete = this.#db.prepare<[string]>('DELETE FROM polyqueue_schedules WHERE name = ?');
  }

  async list(): Promise<Schedule[]> {
    return this.#list.all().map((row) => JSON.parse(row.definition) as Schedule);
  }

  async put(schedule: Schedule): Promise<void> {
    this.#put.run(schedule.name, JSON.stringify(schedule));
  }

  async delete(name: string): Promise<boolean> {
    return this.#delete.run(name).changes === 1;
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

export async function createSqliteScheduleStore(path: string): Promise<ScheduleStore> {
  return new SqliteScheduleStore(path);
}
