/**
 * sqlite — the embedded, zero-setup default: a table queue in one SQLite file (WAL mode)
 * that several processes on one host use at once.
 *
 * Guarantees: at-least-once. A claimed row carries a lease (owner + expiry); a worker that
 * dies leaves its lease to expire and the next claim takes the row again. Every claim counts
 * as an attempt, so a job that kills its worker every time still reaches maxAttempts.
 * Native: delayed delivery and retries (available_at), priority (a column in the claim's
 * ORDER BY), dead letters (table polyqueue_Q_dead). Emulated: pub/sub, as one queue table per
 * subscribed group, filled by publishEvent in one transaction.
 * Connection: SQLITE_PATH (default ./var/polyqueue.db). Options: SQLITE_LEASE_MS,
 * SQLITE_POLL_MIN_MS / SQLITE_POLL_MAX_MS (idle polling bounds; a publish in the same process
 * wakes its consumers at once), SQLITE_SYNCHRONOUS (NORMAL or FULL), POLYQUEUE_PREFIX.
 *
 * A producer needs no library: INSERT INTO polyqueue_email (job_type, payload) VALUES
 * ('send_email', '{"to":"a@example.com","subject":"Hi","body":"Hello"}') enqueues a job.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  AlreadySettledError,
  type BackoffOptions,
  type Broker,
  backoffDelay,
  type Capabilities,
  type ConsumeOptions,
  type DeadLetterStore,
  type Delivery,
  type DeliveryHandler,
  type Envelope,
  encodeEnvelope,
  type Logger,
  type OutgoingMessage,
  type Priority,
  type QueueStats,
  type SettleOutcome,
} from '@polyqueue/core';
import { assertSafeName, type Db, openDatabase, WriteBatcher } from './database';

export interface SqliteBrokerOptions {
  path: string;
  prefix: string;
  leaseMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  synchronous: 'NORMAL' | 'FULL';
  /** How long a write waits for another connection's lock before SQLITE_BUSY (default 10 s). */
  busyTimeoutMs?: number;
  logger?: Logger;
}

/**
 * The pause after a failed claim (SQLITE_BUSY past the busy timeout, SQLITE_FULL, an I/O
 * error): core's full-jitter backoff from 100 ms up to 5 s, so a consumer neither spins on a
 * locked or full file nor waits long once it is writable again.
 */
const CLAIM_BACKOFF: BackoffOptions = { baseMs: 100, maxMs: 5_000 };

const PRIORITY_RANK: Record<Priority, number> = { high: 0, normal: 1, low: 2 };

/** Publishes of at least this many messages commit at once instead of joining the next batch. */
const DIRECT_COMMIT_BATCH = 10;

interface Row {
  id: number;
  job_type: string;
  payload: string;
  envelope: string | null;
  job_id: string | null;
  attempts: number;
  priority: number;
}

/** The queue table, its indexes and its dead-letter table. */
export function queueTableSql(table: string): string {
  const dead = `${table}_dead`;
  return `
    CREATE TABLE IF NOT EXISTS "${table}" (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      job_type TEXT NOT NULL,
      payload TEXT NOT NULL,
      created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
      envelope TEXT,
      job_id TEXT,
      priority INTEGER NOT NULL DEFAULT 1,
      available_at INTEGER NOT NULL DEFAULT 0,
      attempts INTEGER NOT NULL DEFAULT 0,
      lease_owner TEXT,
      lease_expires_at INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX IF NOT EXISTS "${table}_job_id" ON "${table}" (job_id) WHERE job_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS "${table}_claim" ON "${table}" (priority, id) WHERE lease_owner IS NULL;
    CREATE INDEX IF NOT EXISTS "${table}_leases" ON "${table}" (lease_expires_at) WHERE lease_owner IS NOT NULL;
    CREATE TABLE IF NOT EXISTS "${dead}" (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL,
      job_type TEXT NOT NULL,
      body TEXT NOT NULL,
      reason TEXT NOT NULL,
      dead_at TEXT NOT NULL
    );`;
}

export interface ClaimParams {
  owner: string;
  expires: number;
  now: number;
  limit: number;
}

/**
 * Takes up to @limit rows in one statement, so the read and the lease are atomic under
 * SQLite's write lock: ready rows by priority then age, and rows whose lease expired (their
 * worker died). Each branch stops at @limit through its index, so a claim costs the same on a
 * long queue as on a short one.
 */
export function claimSql(table: string): string {
  return `UPDATE "${table}" SET lease_owner = @owner, lease_expires_at = @expires, attempts = attempts + 1
    WHERE id IN (
      SELECT id FROM (
        SELECT id, priority FROM (
          SELECT id, priority FROM "${table}" WHERE lease_owner IS NULL AND available_at <= @now
          ORDER BY priority, id LIMIT @limit)
        UNION ALL
        SELECT id, priority FROM (
          SELECT id, priority FROM "${table}" WHERE lease_owner IS NOT NULL AND lease_expires_at < @now
          ORDER BY lease_expires_at LIMIT @limit))
      ORDER BY priority, id LIMIT @limit)
    RETURNING id, job_type, payload, envelope, job_id, attempts, priority`;
}

/** The prepared statements of one queue table and its dead-letter table. */
class QueueTable {
  readonly insert;
  readonly claim;
  readonly ack;
  readonly retry;
  readonly extend;
  readonly toDead;
  readonly stats;
  readonly deadCount;
  readonly deadList;
  readonly deadTake;
  readonly deadPurge;

  constructor(
    db: Db,
    readonly table: string,
  ) {
    const dead = `${table}_dead`;
    db.exec(queueTableSql(table));
    this.insert = db.prepare(
      // A job id already in the queue is not added again (as BullMQ does with a job id): a
      // producer that publishes again after a crash, or a migration run twice, adds nothing.
      `INSERT OR IGNORE INTO "${table}" (job_type, payload, envelope, job_id, priority, available_at) VALUES (?, ?, ?, ?, ?, ?)`,
    );
    // One statement, so the read and the lease are atomic under SQLite's write lock. Rows whose
    // lease expired (their worker died) are claimable again.
    this.claim = db.prepare<ClaimParams, Row>(claimSql(table));
    this.ack = db.prepare(`DELETE FROM "${table}" WHERE id = ? AND lease_owner = ?`);
    this.retry = db.prepare(
      `UPDATE "${table}" SET lease_owner = NULL, lease_expires_at = 0, available_at = ? WHERE id = ? AND lease_owner = ?`,
    );
    this.extend = db.prepare(`UPDATE "${table}" SET lease_expires_at = ? WHERE id = ? AND lease_owner = ?`);
    this.toDead = db.prepare(
      `INSERT INTO "${dead}" (id, job_type, body, reason, dead_at) VALUES (?, ?, ?, ?, ?)`,
    );
    this.stats = db.prepare<{ now: number }, { ready: number; inFlight: number; delayed: number }>(
      `SELECT
         COALESCE(SUM((lease_owner IS NULL AND available_at <= @now) OR (lease_owner IS NOT NULL AND lease_expires_at < @now)), 0) AS ready,
         COALESCE(SUM(lease_owner IS NOT NULL AND lease_expires_at >= @now), 0) AS inFlight,
         COALESCE(SUM(lease_owner IS NULL AND available_at > @now), 0) AS delayed
       FROM "${table}"`,
    );
    this.deadCount = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM "${dead}"`);
    this.deadList = db.prepare<[number], { id: string; body: string; reason: string; dead_at: string }>(
      `SELECT id, body, reason, dead_at FROM "${dead}" ORDER BY seq LIMIT ?`,
    );
    this.deadTake = db.prepare<[string], { seq: number; id: string; job_type: string; body: string }>(
      `DELETE FROM "${dead}" WHERE id = ? RETURNING seq, id, job_type, body`,
    );
    this.deadPurge = db.prepare(`DELETE FROM "${dead}"`);
  }
}

export class SqliteBroker implements Broker {
  readonly name = 'sqlite';
  readonly capabilities: Capabilities = {
    delayedDelivery: 'native',
    priority: 'native',
    redeliveryAfterCrash: 'lease',
    ordering: 'none',
    pubsub: 'emulated',
    leaseExtension: true,
    delivery: 'at-least-once',
    crossProcess: true,
  };
  /** SQLITE_LEASE_MS: how long a claimed job stays with its consumer without extend(). */
  get leaseMs(): number {
    return this.options.leaseMs;
  }
  readonly #db: Db;
  readonly #writes: WriteBatcher;
  readonly #tables = new Map<string, QueueTable>();
  /** Wakes this process's idle consumers when it publishes; other processes find work by polling. */
  readonly #published = new EventEmitter();
  readonly #subscriptions;
  readonly #groupsOf;

  constructor(private readonly options: SqliteBrokerOptions) {
    assertSafeName('POLYQUEUE_PREFIX', options.prefix);
    this.#db = openDatabase(options.path, options.synchronous, options.busyTimeoutMs);
    this.#writes = new WriteBatcher(this.#db, (error) => {
      // The row stays leased and comes back after its lease; nothing is lost.
      options.logger?.error({ err: error }, 'sqlite: a batched ack failed; the job returns after its lease');
    });
    this.#published.setMaxListeners(0);
    this.#db.exec(
      `CREATE TABLE IF NOT EXISTS "${options.prefix}_subscriptions" (topic TEXT NOT NULL, grp TEXT NOT NULL, PRIMARY KEY (topic, grp))`,
    );
    this.#subscriptions = this.#db.prepare(
      `INSERT OR IGNORE INTO "${options.prefix}_subscriptions" (topic, grp) VALUES (?, ?)`,
    );
    this.#groupsOf = this.#db.prepare<[string], { grp: string }>(
      `SELECT grp FROM "${options.prefix}_subscriptions" WHERE topic = ?`,
    );
  }

  #table(queue: string): QueueTable {
    let table = this.#tables.get(queue);
    if (!table) {
      assertSafeName('queue', queue);
      table = new QueueTable(this.#db, `${this.options.prefix}_${queue}`);
      this.#tables.set(queue, table);
    }
    return table;
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const table = this.#table(queue);
    const now = Date.now();
    const insertAll = () => {
      for (const m of messages) {
        table.insert.run(
          m.envelope.type,
          JSON.stringify(m.envelope.payload ?? null),
          encodeEnvelope(m.envelope),
          m.envelope.id,
          PRIORITY_RANK[m.priority ?? 'normal'],
          m.delayMs ? now + m.delayMs : 0,
        );
      }
    };
    // A batch is a transaction's worth on its own: commit it now. Single jobs (an API under
    // load publishes one per request) share the next batched commit, one sync for many.
    if (messages.length >= DIRECT_COMMIT_BATCH) this.#writes.flushWith(insertAll);
    else await this.#writes.write(insertAll);
    this.#published.emit(queue);
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const table = this.#table(queue);
    const owner = randomUUID();
    const slots = new Slots(options.concurrency);
    let idleMs = this.options.pollMinMs;
    /** Claims failed in a row; 0 while the database answers. */
    let failures = 0;
    options.onReady?.();
    while (!options.signal.aborted) {
      // Claim in batches: with work in hand, wait until half the slots are free rather than
      // issuing one UPDATE per finished job.
      if (slots.running > 0 && slots.free < Math.ceil(options.concurrency / 2)) {
        await slots.whenOneFrees();
        continue;
      }
      const now = Date.now();
      let rows: Row[];
      try {
        // The acks queued since the last commit go in the same transaction as the claim.
        rows = this.#writes.flushWith(() =>
          table.claim.all({ owner, expires: now + this.options.leaseMs, now, limit: slots.free }),
        );
      } catch (error) {
        // A locked or full file is an outage, not the end of the consumer: the acks of this
        // batch failed with it (their rows come back after their lease), and the next claim
        // is tried after a backoff, as the network drivers do after a lost connection.
        failures++;
        if (failures === 1) {
          this.options.logger?.warn({ err: error, table: table.table }, 'sqlite claim failed; retrying');
          options.onConnectionChange?.(false, error as Error);
        }
        await this.#pause(backoffDelay(failures, CLAIM_BACKOFF), options.signal);
        continue;
      }
      if (failures > 0) {
        this.options.logger?.info(
          { table: table.table, failures },
          'sqlite claims succeed again; consuming again',
        );
        failures = 0;
        options.onConnectionChange?.(true);
      }
      if (rows.length === 0) {
        await this.#idle(queue, idleMs, options.signal);
        idleMs = Math.min(this.options.pollMaxMs, idleMs * 2);
        continue;
      }
      idleMs = this.options.pollMinMs;
      rows.sort((a, b) => a.priority - b.priority || a.id - b.id);
      const wake = () => this.#published.emit(queue);
      for (const row of rows)
        void slots.run(() => handler(new SqliteDelivery(table, this.#writes, row, owner, wake)));
    }
    await slots.drained();
    this.#writes.flush();
  }

  /** Waits `ms` or until the abort, whichever comes first. */
  #pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Waits for a local publish, the poll interval, or the abort, whichever comes first. */
  #idle(queue: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#published.off(queue, done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#published.on(queue, done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async publishEvent(topic: string, event: Envelope): Promise<void> {
    const groups = this.#groupsOf.all(topic);
    for (const { grp } of groups) await this.publish(eventQueue(topic, grp), [{ envelope: event }]);
  }

  async subscribe(
    topic: string,
    group: string,
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<void> {
    const queue = eventQueue(topic, group);
    assertSafeName('topic', topic);
    assertSafeName('group', group);
    this.#table(queue);
    this.#subscriptions.run(topic, group);
    await this.consume(queue, handler, options);
  }

  async stats(queue: string): Promise<QueueStats> {
    const table = this.#table(queue);
    const counts = table.stats.get({ now: Date.now() })!;
    return { ...counts, dead: table.deadCount.get()!.n };
  }

  deadLetters(queue: string): DeadLetterStore {
    const table = this.#table(queue);
    return {
      list: async (limit) =>
        table.deadList
          .all(limit)
          .map((d) => ({ id: d.id, body: d.body, reason: d.reason, deadAt: d.dead_at })),
      redrive: async (ids) => {
        const chosen = ids === 'all' ? table.deadList.all(1_000_000).map((d) => d.id) : ids;
        const moved = await this.#writes.write(() => {
          let n = 0;
          for (const id of new Set(chosen)) {
            for (const d of table.deadTake.all(id)) {
              const priority = PRIORITY_RANK.normal;
              table.insert.run(
                d.job_type,
                payloadOf(d.body),
                d.body,
                d.id.startsWith(`${table.table}-`) ? null : d.id,
                priority,
                0,
              );
              n += 1;
            }
          }
          return n;
        });
        this.#published.emit(queue);
        return moved;
      },
      purge: async () => this.#writes.write(() => table.deadPurge.run().changes),
    };
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (!this.#db.open) return;
    this.#writes.flush();
    this.#db.close();
  }
}

function eventQueue(topic: string, group: string): string {
  return `evt_${topic}__${group}`;
}

/** The payload column for a redriven body (kept for SQL readers of the table). */
function payloadOf(body: string): string {
  try {
    return JSON.stringify((JSON.parse(body) as { payload?: unknown }).payload ?? null);
  } catch {
    return 'null';
  }
}

/** Counts running handlers; one waiter at a time learns when a slot frees. */
class Slots {
  running = 0;
  #freed: (() => void) | undefined;
  #allDone: (() => void) | undefined;

  constructor(private readonly size: number) {}

  get free(): number {
    return this.size - this.running;
  }

  async run(task: () => Promise<void>): Promise<void> {
    this.running += 1;
    try {
      await task();
    } catch {
      // A handler's own failure is its business; the slot frees either way.
    } finally {
      this.running -= 1;
      this.#freed?.();
      if (this.running === 0) this.#allDone?.();
    }
  }

  whenOneFrees(): Promise<void> {
    return new Promise((resolve) => {
      this.#freed = () => {
        this.#freed = undefined;
        resolve();
      };
    });
  }

  drained(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#allDone = resolve;
    });
  }
}

/**
 * One claimed row. Every outcome is a statement guarded by lease_owner, so a worker that lost
 * its lease (it stalled past SQLITE_LEASE_MS and another consumer took the row) changes nothing.
 * A class rather than closures: one allocation per job on the hot path.
 */
class SqliteDelivery implements Delivery {
  readonly messageId: string;
  readonly body: string;
  readonly attempt: number;
  #settled = false;

  constructor(
    private readonly table: QueueTable,
    private readonly writes: WriteBatcher,
    private readonly row: Row,
    private readonly owner: string,
    private readonly wakeConsumers: () => void,
  ) {
    // A row inserted by plain SQL has no envelope: it reads as the foreign {type, payload} shape.
    this.body = row.envelope ?? `{"type":${JSON.stringify(row.job_type)},"payload":${row.payload}}`;
    this.messageId = row.job_id ?? `${table.table}-${row.id}`;
    this.attempt = row.attempts;
  }

  #settle(outcome: SettleOutcome): void {
    if (this.#settled) throw new AlreadySettledError(this.messageId, outcome);
    this.#settled = true;
  }

  /** Resolves at once: the DELETE is committed with the next batch or claim (see WriteBatcher.defer). */
  async ack(): Promise<void> {
    this.#settle('ack');
    this.writes.defer(() => this.table.ack.run(this.row.id, this.owner));
  }

  async retry(delayMs: number): Promise<void> {
    this.#settle('retry');
    await this.writes.write(() => this.table.retry.run(Date.now() + delayMs, this.row.id, this.owner));
    if (delayMs <= 0) this.wakeConsumers();
  }

  async deadLetter(reason: string): Promise<void> {
    this.#settle('deadLetter');
    await this.writes.write(() => {
      if (this.table.ack.run(this.row.id, this.owner).changes === 1) {
        this.table.toDead.run(this.messageId, this.row.job_type, this.body, reason, new Date().toISOString());
      }
    });
  }

  async extend(ms: number): Promise<void> {
    await this.writes.write(() => this.table.extend.run(Date.now() + ms, this.row.id, this.owner));
  }
}
