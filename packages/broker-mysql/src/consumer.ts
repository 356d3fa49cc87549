/**
 * The claim loop of one consumer on one queue table, and the deliveries it hands out.
 *
 * A claim is one short transaction:
 *
 *     SELECT ... FROM polyqueue_Q WHERE available_at <= NOW(3)
 *       ORDER BY priority, available_at LIMIT n FOR UPDATE SKIP LOCKED;
 *     UPDATE polyqueue_Q SET lease_owner = ?, available_at = NOW(3) + lease WHERE id IN (...);
 *     COMMIT;
 *
 * SKIP LOCKED lets competing consumers take disjoint rows without waiting on each other, and the
 * row locks last only until that COMMIT: the lease, not an open transaction or a connection,
 * is what keeps a job away from others while its handler runs (Q4M's owner mode held the
 * connection instead; docs/brokers/mysql.md says why leases are used here).
 *
 * n is the consumer's free handler slots (at most MYSQL_CLAIM_BATCH), and the loop claims again
 * only once half the slots are free, so one commit covers many jobs under load. An idle
 * consumer polls with a doubling pause between MYSQL_POLL_MIN_MS and MYSQL_POLL_MAX_MS; a publish
 * from the same process wakes it at once.
 */
import { randomBytes } from 'node:crypto';
import type { ConsumeOptions, Delivery, DeliveryHandler, Logger } from '@polyqueue/core';
import { decodeEnvelope, withAttempt } from '@polyqueue/core';
import type { AckBatcher } from './ack-batcher';
import { quoteIdentifier, type TableNames } from './config';
import { affectedRows, inTransaction, isConnectionError, type Pool, retryOnStaleConnection } from './pool';
import { type MessageRow, rowBody } from './schema';

export interface ConsumerContext {
  pool: Pool;
  logger: Logger;
  leaseMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  claimBatch: number;
  acks: AckBatcher;
  /** Resolves early when this process publishes to the table (see Wakeups). */
  wakeups: Wakeups;
}

/** Lets a publish in this process cut short the idle pause of its consumers. */
export class Wakeups {
  readonly #waiters = new Map<string, Set<() => void>>();

  wait(table: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(table) ?? new Set();
      this.#waiters.set(table, waiters);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  wake(table: string): void {
    for (const waiter of [...(this.#waiters.get(table) ?? [])]) waiter();
  }
}

/** Consumes until options.signal aborts, then waits for in-flight handlers. */
export async function runConsumer(
  ctx: ConsumerContext,
  tables: TableNames,
  handler: DeliveryHandler,
  options: ConsumeOptions,
): Promise<void> {
  const { signal, concurrency } = options;
  const owner = randomBytes(8).toString('hex');
  let claims = 0;
  const inFlight = new Set<Promise<void>>();
  const claimThreshold = Math.max(1, Math.ceil(concurrency / 2));
  let pause = ctx.pollMinMs;
  let connected = true;
  const stopped = aborted(signal);

  options.onReady?.();
  while (!signal.aborted) {
    if (concurrency - inFlight.size < claimThreshold) {
      await Promise.race([...inFlight, stopped]);
      continue;
    }
    let rows: MessageRow[];
    const token = `${owner}-${(claims++).toString(36)}`;
    try {
      rows = await claim(ctx, tables.queue, Math.min(concurrency - inFlight.size, ctx.claimBatch), token);
      if (!connected) {
        connected = true;
        ctx.logger.info({ table: tables.queue }, 'mysql connection restored; consuming again');
        options.onConnectionChange?.(true);
      }
    } catch (error) {
      if (connected && isConnectionError(error)) {
        connected = false;
        ctx.logger.warn({ err: error, table: tables.queue }, 'mysql connection lost; retrying');
        options.onConnectionChange?.(false, error as Error);
      } else if (!isConnectionError(error)) {
        ctx.logger.error({ err: error, table: tables.queue }, 'claim failed; retrying');
      }
      await ctx.wakeups.wait('', ctx.pollMaxMs, signal);
      continue;
    }
    if (rows.length === 0) {
      await ctx.wakeups.wait(tables.queue, pause, signal);
      pause = Math.min(pause * 2, ctx.pollMaxMs);
      continue;
    }
    pause = ctx.pollMinMs;
    for (const row of rows) {
      const running: Promise<void> = handler(createDelivery(ctx, tables, row, token))
        .catch((error) => {
          // Left unsettled: the lease brings the job back.
          ctx.logger.error({ err: error, messageId: row.id }, 'delivery handler failed');
        })
        .finally(() => inFlight.delete(running));
      inFlight.add(running);
    }
  }
  await Promise.all(inFlight);
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

async function claim(
  ctx: ConsumerContext,
  table: string,
  limit: number,
  token: string,
): Promise<MessageRow[]> {
  const t = quoteIdentifier(table);
  return inTransaction(ctx.pool, async (connection) => {
    const [rows] = await connection.query(
      `SELECT id, job_type, payload, body, attempt FROM ${t} FORCE INDEX (claim_order)
       WHERE available_at <= NOW(3) ORDER BY priority, available_at LIMIT ? FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    const claimed = rows as MessageRow[];
    if (claimed.length === 0) return claimed;
    await connection.query(
      `UPDATE ${t} SET lease_owner = ?, available_at = NOW(3) + INTERVAL ? MICROSECOND WHERE id IN (?)`,
      [token, ctx.leaseMs * 1000, claimed.map((r) => r.id)],
    );
    return claimed;
  });
}

/**
 * Every outcome checks `lease_owner`: a consumer whose lease ran out and whose job another
 * consumer claimed cannot settle that other delivery.
 */
function createDelivery(ctx: ConsumerContext, tables: TableNames, row: MessageRow, token: string): Delivery {
  const t = quoteIdentifier(tables.queue);
  const body = rowBody(row);
  const attempt = Number(row.attempt);
  let settled = false;
  const settle = (what: string) => {
    if (settled) throw new Error(`delivery ${row.id} already settled; ${what}() is a second outcome`);
    settled = true;
  };
  return {
    messageId: row.id,
    body,
    attempt,
    async ack() {
      settle('ack');
      await ctx.acks.ack(tables.queue, row.id, token);
    },
    async retry(delayMs) {
      settle('retry');
      const next = withAttempt(body, attempt + 1, row.id);
      const [result] = await retryOnStaleConnection(() =>
        ctx.pool.query(
          `UPDATE ${t} SET lease_owner = NULL, available_at = NOW(3) + INTERVAL ? MICROSECOND, attempt = attempt + 1, body = ?
           WHERE id = ? AND lease_owner = ?`,
          [Math.max(0, Math.round(delayMs)) * 1000, next, row.id, token],
        ),
      );
      if (affectedRows(result) === 0) leaseLost(ctx, row.id, 'retry');
    },
    async deadLetter(reason) {
      settle('deadLetter');
      const decoded = decodeEnvelope(body, row.id);
      const jobId = decoded.ok ? decoded.envelope.id : row.id;
      const moved = await retryOnStaleConnection(() =>
        inTransaction(ctx.pool, async (connection) => {
          // Lock the row while the lease is still ours, so no claimer takes it between copy and delete.
          const [mine] = await connection.query(
            `SELECT id FROM ${t} WHERE id = ? AND lease_owner = ? FOR UPDATE`,
            [row.id, token],
          );
          if ((mine as unknown[]).length === 0) return false;
          await connection.query(
            `INSERT INTO ${quoteIdentifier(tables.dead)} (job_id, message_id, job_type, payload, body, priority, attempt, reason, created_at)
             SELECT ?, id, job_type, payload, ?, priority, attempt, ?, created_at FROM ${t} WHERE id = ?`,
            [jobId, body, reason, row.id],
          );
          await connection.query(`DELETE FROM ${t} WHERE id = ?`, [row.id]);
          return true;
        }),
      );
      if (!moved) leaseLost(ctx, row.id, 'deadLetter');
    },
    async extend(ms) {
      const [result] = await retryOnStaleConnection(() =>
        ctx.pool.query(
          `UPDATE ${t} SET available_at = GREATEST(available_at, NOW(3) + INTERVAL ? MICROSECOND) WHERE id = ? AND lease_owner = ?`,
          [Math.max(0, Math.round(ms)) * 1000, row.id, token],
        ),
      );
      if (affectedRows(result) === 0) {
        throw new Error(
          `lease of message ${row.id} in ${tables.queue} was lost: another consumer has claimed it`,
        );
      }
    },
  };
}

/**
 * The lease ran out and another consumer claimed the job: that consumer now decides its fate,
 * so this outcome is dropped (the idempotency store keeps the side effect single).
 */
function leaseLost(ctx: ConsumerContext, id: string, outcome: string): void {
  ctx.logger.warn(
    { messageId: id, outcome },
    'lease lost before settling; another consumer owns the job now',
  );
}
