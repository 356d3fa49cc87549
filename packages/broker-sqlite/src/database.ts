import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

/** How long a statement waits for another connection's write lock before SQLITE_BUSY. */
export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;

/**
 * Opens a SQLite file shared by several processes: WAL so readers never block the writer,
 * a busy timeout so concurrent writers wait instead of failing. synchronous=FULL (the
 * default) syncs the WAL at every commit, so an accepted publish survives a power loss;
 * NORMAL survives a process crash only, and is several times faster.
 */
export function openDatabase(
  path: string,
  synchronous: 'NORMAL' | 'FULL' = 'FULL',
  busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS,
): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  return db;
}

/** SQL identifiers come from queue names; only these characters are allowed in them. */
export function assertSafeName(kind: string, name: string): void {
  if (!/^[A-Za-z0-9_]{1,100}$/.test(name)) {
    throw new Error(`${kind} "${name}" may contain only letters, digits and _ (it becomes a table name)`);
  }
}

interface PendingWrite {
  run: () => unknown;
  resolve?: (value: unknown) => void;
  reject?: (error: unknown) => void;
}

/**
 * Runs queued writes together in one transaction: one commit (and one sync) for many acks,
 * which is most of the embedded queue's speed. A write is committed on the next turn of the
 * event loop, or earlier, inside the consumer's next claim (flushWith), whichever comes first.
 */
export class WriteBatcher {
  #pending: PendingWrite[] = [];
  #scheduled = false;
  readonly #transaction;

  constructor(
    db: Db,
    private readonly onDeferredError: (error: unknown) => void,
  ) {
    this.#transaction = db.transaction(<T>(batch: PendingWrite[], results: unknown[], then?: () => T) => {
      for (const item of batch) results.push(item.run());
      return then?.();
    });
  }

  /** Queues a write; the promise settles after its commit. */
  write<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ run, resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  /**
   * Queues a write nobody waits for (an ack): committed with the next batch. If the process
   * dies first, the row is still leased and comes back after its lease, as for any crash
   * before an ack; a failure is reported to onDeferredError.
   */
  defer(run: () => unknown): void {
    this.#pending.push({ run });
    this.#schedule();
  }

  /** Commits the queued writes now, then runs `then` in the same transaction. */
  flushWith<T>(then: () => T): T {
    return this.#flush(then) as T;
  }

  flush(): void {
    this.#flush();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#pending.length > 0) this.#flush();
    });
  }

  #flush<T>(then?: () => T): T | undefined {
    const batch = this.#pending.splice(0);
    const results: unknown[] = [];
    let value: T | undefined;
    try {
      // IMMEDIATE takes the write lock up front: two processes never deadlock upgrading a read.
      value = this.#transaction.immediate(batch, results, then) as T | undefined;
    } catch (error) {
      for (const item of batch) (item.reject ?? this.onDeferredError)(error);
      if (then) throw error;
      return undefined;
    }
    for (const [i, item] of batch.entries()) item.resolve?.(results[i]);
    return value;
  }
}
