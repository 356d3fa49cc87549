/**
 * sqlite — the embedded, zero-setup default: a table queue in one SQLite file (WAL mode)
 * that several processes on one host use at once.
 *
 * Guarantees: at-least-once. A claimed row carries a lease (owner + expiry); a worker that
 * dies leaves its lease to expire and the next claim takes the row again. Every claim counts
 * as an attempt, so a job that kills its worker every time still reaches maxAttempts.
 * Ack durability 'eventually': ack() resolves at once and its DELETE commits with the
 * consumer's next claim, or within 20 ms on its own; a process killed in between leaves the row
 * leased, and it comes back after its lease like any interrupted job. A claim leases the free
 * slots plus about 100 ms of measured handler time (at most 100 rows), so fast jobs cost one
 * commit per 100.
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
import {
  type Broker,
  type BrokerAdmin,
  type BrokerEvents,
  type Capabilities,
  type ConsumeOptions,
  type DeadLetterStore,
  type DeliveryHandler,
  type Envelope,
  encodeEnvelope,
  type Logger,
  type OutgoingMessage,
  type QueueStats,
  Wakeups,
} from '@polyqueue/core';
import { runConsumer } from './consumer';
import { assertSafeName, type Db, openDatabase, WriteBatcher } from './database';
import { deadLetterStore } from './dead-letters';
import { QueueTable } from './queue-table';
import { PRIORITY_RANK } from './schema';

export interface SqliteBrokerOptions {
  path: string;
  prefix: string;
  leaseMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  synchronous: 'NORMAL' | 'FULL';
  /** How long a write waits for another connection's lock before SQLITE_BUSY (default 10 s). */
  busyTimeoutMs?: number;
  /** The most rows one claim leases, prefetch included (default 100; never below concurrency). */
  claimBatch?: number;
  logger?: Logger;
}

/** The most rows one claim leases by default: one commit per 100 fast jobs, as the best raw loop. */
const DEFAULT_CLAIM_BATCH = 100;

/** Publishes of at least this many messages commit at once instead of joining the next batch. */
const DIRECT_COMMIT_BATCH = 10;

export class SqliteBroker implements Broker, BrokerEvents, BrokerAdmin {
  readonly name = 'sqlite';
  readonly capabilities: Capabilities = {
    delayedDelivery: 'native',
    priority: 'native',
    redeliveryAfterCrash: 'lease',
    ordering: 'none',
    pubsub: 'emulated',
    leaseExtension: true,
    delivery: 'at-least-once',
    // ack() resolves at once; its DELETE commits with the next claim, or within 20 ms.
    ackDurable: 'eventually',
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
  readonly #wakeups = new Wakeups();
  readonly #subscriptions;
  readonly #groupsOf;

  constructor(private readonly options: SqliteBrokerOptions) {
    assertSafeName('POLYQUEUE_PREFIX', options.prefix);
    this.#db = openDatabase(options.path, options.synchronous, options.busyTimeoutMs);
    this.#writes = new WriteBatcher(this.#db, (error) => {
      // The row stays leased and comes back after its lease; nothing is lost.
      options.logger?.error({ err: error }, 'sqlite: a batched ack failed; the job returns after its lease');
    });
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
    this.#wakeups.wake(queue);
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const { leaseMs, pollMinMs, pollMaxMs, logger } = this.options;
    await runConsumer(
      {
        writes: this.#writes,
        wakeups: this.#wakeups,
        leaseMs,
        claimBatch: this.options.claimBatch ?? DEFAULT_CLAIM_BATCH,
        pollMinMs,
        pollMaxMs,
        ...(logger ? { logger } : {}),
      },
      queue,
      this.#table(queue),
      handler,
      options,
    );
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
    return deadLetterStore(this.#table(queue), this.#writes, () => this.#wakeups.wake(queue));
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
