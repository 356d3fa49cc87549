/**
 * Pause flags (QueueControls) in the state file (STATE_URL=sqlite:<path>): a row in
 * `polyqueue_paused_queues` per paused queue. Every process on the host opens the same file, so
 * a pause written by the CLI or the API is what each worker's next poll reads. Its own
 * connection beside the state store's, so neither store's file changes for the other.
 */
import { assertControlledQueueName, type QueueControls } from '@polyqueue/core';
import { type Db, openDatabase } from './database';

export class SqliteQueueControls implements QueueControls {
  readonly #db: Db;
  readonly #list;
  readonly #pause;
  readonly #resume;

  constructor(path: string) {
    this.#db = openDatabase(path);
    this.#db.exec(`CREATE TABLE IF NOT EXISTS polyqueue_paused_queues (
      queue TEXT PRIMARY KEY,
      paused_at TEXT NOT NULL
    )`);
    this.#list = this.#db.prepare<[], { queue: string }>('SELECT queue FROM polyqueue_paused_queues');
    this.#pause = this.#db.prepare<[string, string]>(
      'INSERT INTO polyqueue_paused_queues (queue, paused_at) VALUES (?, ?) ON CONFLICT DO NOTHING',
    );
    this.#resume = this.#db.prepare<[string]>('DELETE FROM polyqueue_paused_queues WHERE queue = ?');
  }

  async paused(): Promise<ReadonlySet<string>> {
    return new Set(this.#list.all().map((row) => row.queue));
  }

  async pause(queue: string): Promise<boolean> {
    assertControlledQueueName(queue);
    return this.#pause.run(queue, new Date().toISOString()).changes === 1;
  }

  async resume(queue: string): Promise<boolean> {
    return this.#resume.run(queue).changes === 1;
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

export async function createSqliteQueueControls(path: string): Promise<QueueControls> {
  return new SqliteQueueControls(path);
}
