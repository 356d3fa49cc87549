import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

/**
 * Opens a SQLite file shared by several processes: WAL so readers never block the writer,
 * a busy timeout so concurrent writers wait instead of failing. synchronous=FULL (the
 * default) syncs the WAL at every commit, so an accepted publish survives a power loss;
 * NORMAL survives a process crash only, and is several times faster.
 */
export function openDatabase(path: string, synchronous: 'NORMAL' | 'FULL' = 'FULL'): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('busy_timeout = 10000');
  return db;
}

/** SQL identifiers come from queue names; only these characters are allowed in them. */
export function assertSafeName(kind: string, name: string): void {
  if (!/^[A-Za-z0-9_]{1,100}$/.test(name)) {
    throw new Error(`${kind} "${name}" may contain only letters, digits and _ (it becomes a table name)`);
  }
}

/**
 * Runs queued writes together in one transaction on the next turn of the event loop: one
 * commit for many acks, which is most of the embedded queue's speed. Each write's promise
 * settles after the commit.
 */
export class WriteBatcher {
  #pending: { run: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;

  readonly #transaction;

  constructor(db: Db) {
    this.#transaction = db.transaction((batch: { run: () => unknown }[], results: unknown[]) => {
      for (const item of batch) results.push(item.run());
    });
  }

  write<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending.splice(0);
    const results: unknown[] = [];
    try {
      // IMMEDIATE takes the write lock up front: two processes never deadlock upgrading a read.
      this.#transaction.immediate(batch, results);
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    for (const [i, item] of batch.entries()) item.resolve(results[i]);
  }
}
