/**
 * Worker heartbeats (WorkerRegistry) in the state file (STATE_URL=sqlite:<path>): a row per
 * worker process in `polyqueue_workers`, its heartbeat as JSON beside the time it was written.
 * Its own connection beside the state store's, as the pause flags have.
 */
import { byQueueThenId, WORKER_EXPIRY_MS, type WorkerHeartbeat, type WorkerRegistry } from '@polyqueue/core';
import { type Db, openDatabase } from './database';

export class SqliteWorkerRegistry implements WorkerRegistry {
  readonly #db: Db;
  readonly #upsert;
  readonly #live;
  readonly #expire;
  readonly #remove;

  constructor(path: string) {
    this.#db = openDatabase(path);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS polyqueue_workers (
      id TEXT PRIMARY KEY,
      beat_ms INTEGER NOT NULL,
      heartbeat TEXT NOT NULL
    )`);
    this.#upsert = this.#db.prepare<[string, number, string]>(
      `INSERT INTO polyqueue_workers (id, beat_ms, heartbeat) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET beat_ms = excluded.beat_ms, heartbeat = excluded.heartbeat`,
    );
    this.#live = this.#db.prepare<[number], { heartbeat: string }>(
      'SELECT heartbeat FROM polyqueue_workers WHERE beat_ms > ?',
    );
    this.#expire = this.#db.prepare<[number]>('DELETE FROM polyqueue_workers WHERE beat_ms <= ?');
    this.#remove = this.#db.prepare<[string]>('DELETE FROM polyqueue_workers WHERE id = ?');
  }

  async beat(heartbeat: WorkerHeartbeat): Promise<void> {
    const at = Date.parse(heartbeat.lastHeartbeat);
    this.#upsert.run(heartbeat.id, at, JSON.stringify(heartbeat));
    // Rows of workers that died without removing themselves go after ten expiry periods.
    this.#expire.run(at - 10 * WORKER_EXPIRY_MS);
  }

  async live(now = Date.now()): Promise<WorkerHeartbeat[]> {
    const rows = this.#live.all(now - WORKER_EXPIRY_MS);
    return rows.map((row) => JSON.parse(row.heartbeat) as WorkerHeartbeat).sort(byQueueThenId);
  }

  async remove(id: string): Promise<void> {
    this.#remove.run(id);
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

export async function createSqliteWorkerRegistry(path: string): Promise<WorkerRegistry> {
  return new SqliteWorkerRegistry(path);
}
