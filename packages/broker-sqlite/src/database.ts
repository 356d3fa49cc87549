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

/** How soon a scheduled commit tries the write lock again while another connection holds it. */
const LOCK_RETRY_MS = 1;

/**
 * How many microtask hops after a scheduled commit its writers' continuations have to ask for a
 * write that joins the follow-up commit of the same turn. The API's enqueue takes about 5 from
 * its record's commit to its publish; the rest is room for a deeper await chain.
 */
const FOLLOW_UP_HOPS = 32;

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export interface WriteOptions {
  /**
   * false: the write need not survive a power cut, only a process crash. A batch of only such
   * writes commits without syncing the WAL (synchronous=NORMAL for that commit): its frames are in
   * the WAL file, which a process crash leaves intact, and the next synced commit of any
   * connection on the file makes them durable with its own. One write with sync in a batch makes
   * the whole batch synced. For the writes whose loss on a power cut is repaired by what the
   * power cut causes anyway (a job's claim and `processing` mark: the job is redelivered). On a
   * connection opened with synchronous=NORMAL no commit syncs. Default true.
   */
  sync?: boolean;
}

interface PendingWrite {
  run: () => unknown;
  /** Whether its commit must sync the WAL (see WriteOptions.sync). */
  sync: boolean;
  resolve?: (value: unknown) => void;
  reject?: (error: unknown) => void;
}

/**
 * Group commit: runs the writes queued during one turn of the event loop together in one
 * transaction, so many acks, publishes or job records share one commit (and one sync: with
 * synchronous=FULL a write's promise resolves only once it is on disk, as a lone commit would).
 * A lone write waits for no timer, only for the end of the current macrotask (setImmediate);
 * under load there is one transaction per turn, holding every write asked for meanwhile. A write
 * is committed then, or earlier, inside the consumer's next claim (flushWith), whichever comes
 * first. A write that the writers of a scheduled commit ask for as they continue (within
 * FOLLOW_UP_HOPS microtasks of it: the API publishing a job once its record is committed) is
 * committed once those microtasks have run, in the same turn, with the others asked for there:
 * one follow-up commit per batcher, after the commit it follows, instead of one in the next turn.
 * A write that throws (a constraint) fails only its own caller, the others still commit: the
 * batch is then run again with a savepoint per write (so a write's `run` may run twice and must
 * do nothing but its SQL); a savepoint per write for every batch would cost more than the rest
 * of the commit's statements.
 */
export class WriteBatcher {
  #pending: PendingWrite[] = [];
  #scheduled = false;
  readonly #db: Db;
  readonly #busyTimeoutMs: number;
  readonly #begin;
  readonly #commit;
  readonly #rollback;
  readonly #mark;
  readonly #undo;
  readonly #release;
  readonly #entry;
  /**
   * The connection's own synchronous level (PRAGMA synchronous: 1 NORMAL, 2 FULL, 3 EXTRA); from
   * 2 up it syncs at commit (0 OFF and 1 NORMAL do not, in WAL mode).
   */
  readonly #level: number;
  /** Commits so far by kind: what the tests and a profile of a worker read. */
  readonly commits = { synced: 0, unsynced: 0 };

  constructor(
    db: Db,
    private readonly onDeferredError: (error: unknown) => void,
  ) {
    this.#db = db;
    this.#busyTimeoutMs = Number(db.pragma('busy_timeout', { simple: true }));
    this.#level = Number(db.pragma('synchronous', { simple: true }));
    // IMMEDIATE takes the write lock up front: two processes never deadlock upgrading a read.
    this.#begin = db.prepare('BEGIN IMMEDIATE');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
    this.#mark = db.prepare('SAVEPOINT polyqueue_batch');
    this.#undo = db.prepare('ROLLBACK TO polyqueue_batch');
    this.#release = db.prepare('RELEASE polyqueue_batch');
    // Inside the batch's transaction better-sqlite3 runs this as SAVEPOINT ... RELEASE, and
    // rolls back to the savepoint when run throws.
    this.#entry = db.transaction((run: () => unknown) => run());
  }

  /** Queues a write; the promise settles after its commit (synced, unless options.sync is false). */
  write<T>(run: () => T, options?: WriteOptions): Promise<T> {
    const sync = options?.sync ?? true;
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ run, sync, resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  /**
   * Queues a write nobody waits for (an ack): committed with the next batch. If the process
   * dies first, the row is still leased and comes back after its lease, as for any crash
   * before an ack; a failure is reported to onDeferredError.
   */
  defer(run: () => unknown, options?: WriteOptions): void {
    this.#pending.push({ run, sync: options?.sync ?? true });
    this.#schedule();
  }

  /**
   * Commits the queued writes now, then runs `then` in the same transaction; synced unless
   * options.sync is false and no queued write asks for it.
   */
  flushWith<T>(then: () => T, options?: WriteOptions): T {
    return this.#flush(then, true, options?.sync ?? true)!.value as T;
  }

  flush(): void {
    this.#flush(undefined, true);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (WriteBatcher.#followUps) WriteBatcher.#followUps.add(this);
    else setImmediate(() => this.#flushWhenFree(Date.now() + this.#busyTimeoutMs, true));
  }

  /** While open, the batchers asked for a write in the microtasks after a scheduled commit. */
  static #followUps: Set<WriteBatcher> | undefined;

  /**
   * Opens the follow-up window after a scheduled commit: for FOLLOW_UP_HOPS microtasks, a write
   * to an idle batcher waits for the window to close instead of for the next turn; then each such
   * batcher commits once. A follow-up commit opens no window of its own, so a chain of writes
   * (a job's message, then its `queued` mark) still ends at the next turn's batch.
   */
  static #openFollowUpWindow(): void {
    if (WriteBatcher.#followUps) return;
    const batchers = new Set<WriteBatcher>();
    WriteBatcher.#followUps = batchers;
    let hops = FOLLOW_UP_HOPS;
    const hop = () => {
      if (--hops > 0) {
        queueMicrotask(hop);
        return;
      }
      WriteBatcher.#followUps = undefined;
      for (const batcher of batchers) batcher.#flushWhenFree(Date.now() + batcher.#busyTimeoutMs, false);
    };
    queueMicrotask(hop);
  }

  /**
   * The scheduled commit does not wait for another process's write lock in SQLite's busy
   * handler, which sleeps (1, 2, 5, 10 ... 100 ms, each wait longer than the last) with the event
   * loop blocked: it tries the lock and, while another connection holds it, tries again a
   * millisecond later, the event loop meanwhile free to answer requests and gather their writes
   * into this batch. Past busy_timeout it waits in the busy handler as a lone write would.
   */
  #flushWhenFree(deadline: number, opensWindow: boolean): void {
    const committed = this.#pending.length > 0;
    if (committed && !this.#flush(undefined, Date.now() >= deadline)) {
      setTimeout(() => this.#flushWhenFree(deadline, opensWindow), LOCK_RETRY_MS);
      return;
    }
    this.#scheduled = false;
    if (committed && opensWindow) WriteBatcher.#openFollowUpWindow();
  }

  /**
   * Runs the queued writes, then `then`, in one transaction. Undefined, with nothing done, when
   * `wait` is false and another connection holds the write lock.
   */
  #flush<T>(
    then: (() => T) | undefined,
    wait: boolean,
    thenSyncs = false,
  ): { value: T | undefined } | undefined {
    const batch = this.#pending.splice(0);
    const results: Outcome[] = [];
    let value: T | undefined;
    const syncs = this.#level >= 2;
    const sync = syncs && (thenSyncs || batch.some((w) => w.sync));
    // Set outside the transaction, with exec (the pragma acts when compiled): issued inside
    // one, it was measured to leave later FULL commits unsynced too.
    const skipsSync = syncs && !sync;
    if (skipsSync) this.#db.exec('PRAGMA synchronous = NORMAL');
    try {
      if (!this.#lock(wait)) {
        this.#pending.unshift(...batch);
        return undefined;
      }
      try {
        this.#runAll(batch, results);
        value = then?.();
        this.#commit.run();
        this.commits[sync ? 'synced' : 'unsynced'] += 1;
      } catch (error) {
        if (this.#db.inTransaction) this.#rollback.run();
        throw error;
      }
    } catch (error) {
      for (const item of batch) (item.reject ?? this.onDeferredError)(error);
      if (then) throw error;
      return { value: undefined };
    } finally {
      if (skipsSync) this.#db.exec(`PRAGMA synchronous = ${this.#level}`);
    }
    for (const [i, item] of batch.entries()) {
      const outcome = results[i]!;
      if (outcome.ok) item.resolve?.(outcome.value);
      else (item.reject ?? this.onDeferredError)(outcome.error);
    }
    return { value };
  }

  /** Runs every write; if one throws, undoes them all and runs each under its own savepoint. */
  #runAll(batch: PendingWrite[], results: Outcome[]): void {
    this.#mark.run();
    try {
      for (const item of batch) results.push({ ok: true, value: item.run() });
      this.#release.run();
      return;
    } catch (error) {
      if (!this.#db.inTransaction) throw error;
      this.#undo.run();
      this.#release.run();
      results.length = 0;
    }
    for (const item of batch) results.push(this.#run(item));
  }

  #run(item: PendingWrite): Outcome {
    try {
      return { ok: true, value: this.#entry(item.run) };
    } catch (error) {
      // Some errors (SQLITE_FULL, IOERR) make SQLite roll back the whole transaction: then
      // nothing of the batch can commit, and every caller fails.
      if (!this.#db.inTransaction) throw error;
      return { ok: false, error };
    }
  }

  /** BEGIN IMMEDIATE; without `wait`, false at once while another connection holds the lock. */
  #lock(wait: boolean): boolean {
    if (wait) {
      this.#begin.run();
      return true;
    }
    // exec, not a prepared statement: SQLite applies this pragma when it compiles it.
    this.#db.exec('PRAGMA busy_timeout = 0');
    try {
      this.#begin.run();
      return true;
    } catch (error) {
      if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) return false;
      throw error;
    } finally {
      this.#db.exec(`PRAGMA busy_timeout = ${this.#busyTimeoutMs}`);
    }
  }
}
