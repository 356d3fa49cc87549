/**
 * mysql — a MySQL 8 / MariaDB 10.6+ table queue in the style of Q4M (docs/brokers/mysql.md).
 *
 * Guarantees: at-least-once. publish() resolves after COMMIT (durable with the server default
 * innodb_flush_log_at_trx_commit=1). A claimed job is leased for MYSQL_LEASE_MS; a consumer that
 * dies mid-job loses the lease and the job comes back to another consumer; extend() renews it.
 * ack() resolves after the COMMIT that deleted the row; that commit is shared with the other
 * acks of the batch and with the consumer's next claim (consumer.ts), so a busy consumer pays one
 * redo-log flush per batch, not per job. Ack durability 'on-resolve', for that reason.
 *
 * Native: delayed delivery and retry delays (the `available_at` column), priority (the
 * `priority` column, high/normal/low), redelivery after a crash (leases), FIFO within a priority
 * for one consumer, dead letters (`polyqueue_Q_dead`). Emulated: pub/sub — each subscribed group
 * gets its own queue table, and publishEvent inserts the event into every group's table in one
 * transaction. Ordering keys are not used (one consumer keeps the queue's order).
 *
 * Tables: `polyqueue_Q` (id, job_type, payload, created_at, plus body, priority, available_at,
 * attempt, lease_owner; see schema.ts), `polyqueue_Q_dead`, `polyqueue_subscriptions`, and
 * `polyqueue_events_<topic>__<group>` per subscribed group. Created on first use.
 *
 * Connection string: MYSQL_URL=mysql://user:password@host:3306/database (default
 * mysql://root@127.0.0.1:3306/polyqueue; the database is created when missing).
 * Options: POLYQUEUE_PREFIX, MYSQL_LEASE_MS, MYSQL_POLL_MIN_MS / MYSQL_POLL_MAX_MS (idle poll
 * backoff bounds), MYSQL_CLAIM_BATCH, MYSQL_POOL_SIZE (config.ts).
 */
import type {
  Broker,
  BrokerAdmin,
  BrokerEvents,
  Capabilities,
  CompleteBroker,
  ConsumeOptions,
  DeliveryHandler,
  Envelope,
  Logger,
  OutgoingMessage,
  QueueStats,
} from '@polyqueue/core';
import { encodeEnvelope, Wakeups } from '@polyqueue/core';
import { AckBatcher } from './ack-batcher';
import {
  groupTableNames,
  type MysqlBrokerOptions,
  PRIORITY_VALUE,
  quoteIdentifier,
  subscriptionsTable,
  type TableNames,
  tableNames,
} from './config';
import { type ConsumerContext, runConsumer } from './consumer';
import { mysqlDeadLetters } from './dead-letters';
import { createMysqlPool, inTransaction, type Pool, retryOnStaleConnection } from './pool';
import { TableCache } from './schema';

export const MYSQL_CAPABILITIES: Capabilities = {
  delayedDelivery: 'native',
  priority: 'native',
  redeliveryAfterCrash: 'lease',
  ordering: 'fifo',
  pubsub: 'emulated',
  leaseExtension: true,
  delivery: 'at-least-once',
  // ack() resolves after the COMMIT that deleted the row.
  ackDurable: 'on-resolve',
  crossProcess: true,
};

/** Rows per INSERT statement; a larger publish uses several statements in one transaction. */
const INSERT_CHUNK = 500;

export async function createMysqlBroker(
  options: MysqlBrokerOptions,
  logger: Logger,
): Promise<CompleteBroker> {
  const pool = await createMysqlPool(options.url, {
    connectionLimit: options.poolSize,
    multipleStatements: true,
  });
  return new MysqlBroker(pool, options, logger);
}

class MysqlBroker implements Broker, BrokerEvents, BrokerAdmin {
  readonly name = 'mysql';
  readonly capabilities = MYSQL_CAPABILITIES;
  /** MYSQL_LEASE_MS: how long a claimed row stays with its consumer without extend(). */
  get leaseMs(): number {
    return this.options.leaseMs;
  }
  readonly #tables: TableCache;
  readonly #acks: AckBatcher;
  readonly #wakeups = new Wakeups();
  readonly #consumer: ConsumerContext;

  constructor(
    private readonly pool: Pool,
    private readonly options: MysqlBrokerOptions,
    logger: Logger,
  ) {
    this.#tables = new TableCache(pool);
    this.#acks = new AckBatcher(pool, logger);
    this.#consumer = {
      pool,
      logger,
      leaseMs: options.leaseMs,
      pollMinMs: options.pollMinMs,
      pollMaxMs: options.pollMaxMs,
      claimBatch: options.claimBatch,
      acks: this.#acks,
      wakeups: this.#wakeups,
    };
  }

  #names(queue: string): TableNames {
    return tableNames(this.options.prefix, queue);
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const tables = this.#names(queue);
    await this.#insert(tables, messages);
  }

  async #insert(tables: TableNames, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.#tables.ensure(tables);
    const t = quoteIdentifier(tables.queue);
    const rows = messages.map((m) => [
      m.envelope.type,
      JSON.stringify(m.envelope.payload ?? null),
      encodeEnvelope(m.envelope),
      PRIORITY_VALUE[m.priority ?? 'normal'],
      Math.max(0, Math.round(m.delayMs ?? 0)) * 1000,
      m.envelope.attempt,
    ]);
    const sql = (n: number) =>
      `INSERT INTO ${t} (job_type, payload, body, priority, available_at, attempt) VALUES ${Array(n)
        .fill('(?, ?, ?, ?, NOW(3) + INTERVAL ? MICROSECOND, ?)')
        .join(', ')}`;
    await retryOnStaleConnection(async () => {
      if (rows.length <= INSERT_CHUNK) {
        await this.pool.query(sql(rows.length), rows.flat());
        return;
      }
      await inTransaction(this.pool, async (connection) => {
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          const chunk = rows.slice(i, i + INSERT_CHUNK);
          await connection.query(sql(chunk.length), chunk.flat());
        }
      });
    });
    this.#wakeups.wake(tables.queue);
  }

  async consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const tables = this.#names(queue);
    await this.#tables.ensure(tables);
    await runConsumer(this.#consumer, tables, handler, options);
  }

  async publishEvent(topic: string, event: Envelope): Promise<void> {
    const subscriptions = subscriptionsTable(this.options.prefix);
    await this.#tables.ensureSubscriptions(subscriptions);
    const [rows] = await retryOnStaleConnection(() =>
      this.pool.query(`SELECT group_name FROM ${quoteIdentifier(subscriptions)} WHERE topic = ?`, [topic]),
    );
    const groups = (rows as { group_name: string }[]).map((r) =>
      groupTableNames(this.options.prefix, topic, r.group_name),
    );
    if (groups.length === 0) return;
    for (const tables of groups) await this.#tables.ensure(tables);
    const body = encodeEnvelope(event);
    const payload = JSON.stringify(event.payload ?? null);
    // One transaction: every group gets the event, or none does.
    await retryOnStaleConnection(() =>
      inTransaction(this.pool, async (connection) => {
        for (const tables of groups) {
          await connection.query(
            `INSERT INTO ${quoteIdentifier(tables.queue)} (job_type, payload, body, attempt) VALUES (?, ?, ?, ?)`,
            [event.type, payload, body, event.attempt],
          );
        }
      }),
    );
    for (const tables of groups) this.#wakeups.wake(tables.queue);
  }

  async subscribe(
    topic: string,
    group: string,
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<void> {
    const tables = groupTableNames(this.options.prefix, topic, group);
    const subscriptions = subscriptionsTable(this.options.prefix);
    await this.#tables.ensure(tables);
    await this.#tables.ensureSubscriptions(subscriptions);
    // Registered (committed) before onReady: every event published after onReady reaches the group.
    await retryOnStaleConnection(() =>
      this.pool.query(
        `INSERT IGNORE INTO ${quoteIdentifier(subscriptions)} (topic, group_name) VALUES (?, ?)`,
        [topic, group],
      ),
    );
    await runConsumer(this.#consumer, tables, handler, options);
  }

  async stats(queue: string): Promise<QueueStats> {
    const tables = this.#names(queue);
    await this.#tables.ensure(tables);
    const [[counts], [dead]] = await Promise.all([
      this.pool.query(
        `SELECT COALESCE(SUM(available_at <= NOW(3)), 0) AS ready,
                COALESCE(SUM(available_at > NOW(3) AND lease_owner IS NOT NULL), 0) AS in_flight,
                COALESCE(SUM(available_at > NOW(3) AND lease_owner IS NULL), 0) AS delayed_count
         FROM ${quoteIdentifier(tables.queue)}`,
      ),
      this.pool.query(`SELECT COUNT(*) AS dead FROM ${quoteIdentifier(tables.dead)}`),
    ]);
    const c = (counts as Record<string, string>[])[0]!;
    return {
      ready: Number(c.ready),
      inFlight: Number(c.in_flight),
      delayed: Number(c.delayed_count),
      dead: Number((dead as Record<string, string>[])[0]!.dead),
    };
  }

  deadLetters(queue: string) {
    const tables = this.#names(queue);
    return mysqlDeadLetters(this.pool, tables, () => this.#tables.ensure(tables));
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.#acks.drain();
    await this.pool.end();
  }
}
