/**
 * The claim loop of one consumer on one queue table. Its unit of work is one short transaction
 * that settles the finished batch and leases the next, sent in two round trips:
 *
 *     START TRANSACTION;
 *     DELETE FROM polyqueue_Q WHERE id IN (<acked>) AND lease_owner IN (<their claims>);
 *     SELECT ... FROM polyqueue_Q WHERE available_at <= NOW(3)
 *       ORDER BY priority, available_at LIMIT n FOR UPDATE SKIP LOCKED;
 *     -- then:
 *     UPDATE polyqueue_Q SET lease_owner = ?, available_at = NOW(3) + lease WHERE id IN (...);
 *     COMMIT;
 *
 * SKIP LOCKED lets competing consumers take disjoint rows without waiting on each other, and the
 * row locks last only until that COMMIT: the lease, not an open transaction or a connection,
 * is what keeps a job away from others while its handler runs (Q4M's owner mode held the
 * connection instead; docs/brokers/mysql.md says why leases are used here).
 *
 * A durable commit (innodb_flush_log_at_trx_commit=1) and each transaction's fixed work are what
 * a table queue pays for, so one commit carries as many jobs as is safe, both ways:
 * - Acks ride with the next claim. ack() frees its slot at once, joins the next transaction's
 *   DELETE and resolves only after that COMMIT: an ack is as durable as a DELETE of its own.
 *   Before each transaction the loop lets the current turn of the event loop finish, so every
 *   handler that finished in it is in the same DELETE. An ack waits at most ACK_MAX_WAIT_MS
 *   (or not at all when the consumer has nothing left to run) before it gets a transaction.
 * - Prefetch. n is the free slots plus a prefetch of about PREFETCH_HORIZON_MS of handler time,
 *   measured (so 0 for slow jobs, and up to MYSQL_CLAIM_BATCH for fast ones); leased rows wait in
 *   memory for a slot, in claim order. The loop claims again once half of that room is free.
 *   A buffered row that has waited half its lease is put back (lease ended, due now) instead of
 *   started, and so are all buffered rows when the consumer stops.
 * With fast handlers that is one commit per MYSQL_CLAIM_BATCH jobs; with slow ones one per ack
 * batch, as when each DELETE went out on its own. One claim runs at a time per consumer: two
 * concurrent ones on the same index head mostly skip each other's locks.
 *
 * An idle consumer polls with a doubling pause between MYSQL_POLL_MIN_MS and MYSQL_POLL_MAX_MS; a
 * publish from the same process, or an ack of its own, wakes it at once. After the signal aborts
 * the loop claims nothing more and deletes the acks of its draining handlers; an ack given after
 * consume() has returned goes through the broker's AckBatcher.
 */
import { randomBytes } from 'node:crypto';
import type { ConsumeOptions, DeliveryHandler, Logger } from '@polyqueue/core';
import {
  type AckBatcher,
  deleteAcked,
  deleteAckedSql,
  deleteAckedValues,
  MAX_ACK_BATCH,
  type PendingAck,
  warnLostAcks,
} from './ack-batcher';
import { quoteIdentifier, type TableNames } from './config';
import { createDelivery } from './delivery';
import { affectedRows, isConnectionError, type Pool, retryOnStaleConnection } from './pool';
import type { MessageRow } from './schema';

export interface ConsumerContext {
  pool: Pool;
  logger: Logger;
  leaseMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  claimBatch: number;
  /** Deletes acks that arrive when no claim loop carries them. */
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

/** Wakes the claim loop when a slot frees or an ack arrives; the loop re-checks its state after. */
class Nudge {
  #promise: Promise<void> | undefined;
  #resolve: (() => void) | undefined;

  wait(): Promise<void> {
    this.#promise ??= new Promise((resolve) => {
      this.#resolve = resolve;
    });
    return this.#promise;
  }

  wake(): void {
    const resolve = this.#resolve;
    this.#promise = undefined;
    this.#resolve = undefined;
    resolve?.();
  }
}

/**
 * How much work a consumer leases ahead of its free slots: about this long of handler time
 * (measured), so fast jobs come many per commit while slow ones are left to other consumers.
 */
const PREFETCH_HORIZON_MS = 100;

/**
 * The longest an ack waits for the claim it rides with while its consumer still has leased work
 * to run; then it gets a transaction of its own (which also claims). Far below any lease, so a
 * finished job never outlives its lease waiting to be deleted.
 */
const ACK_MAX_WAIT_MS = 20;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Claimed {
  row: MessageRow;
  token: string;
  at: number;
}

/** Consumes until options.signal aborts, then waits for in-flight handlers and their acks. */
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
  /** Deliveries handed out whose handler has neither acked nor finished. */
  let busy = 0;
  /** Leased to this consumer, waiting for a free slot. */
  const buffer: Claimed[] = [];
  /** Leased rows to put back in the next transaction (they waited too long in the buffer). */
  const giveBack: Claimed[] = [];
  /** Acks waiting for the next transaction of this loop. */
  const acks: PendingAck[] = [];
  /** When the oldest of them arrived. */
  let acksSince = 0;
  /** False once the loop has ended: later acks go to ctx.acks. */
  let carrying = true;
  const nudge = new Nudge();
  /** Mean milliseconds from hand-out to ack (or end) of recent deliveries; sizes the prefetch. */
  let handlerMs = Number.POSITIVE_INFINITY;
  let pause = ctx.pollMinMs;
  let connected = true;
  let claiming = false;
  /** The last claim found nothing (or failed): wait for a wake-up or the pause before the next. */
  let dry = false;
  let failed = false;
  const stopped = aborted(signal);

  const prefetch = () =>
    Math.min(ctx.claimBatch, Math.floor((concurrency * PREFETCH_HORIZON_MS) / Math.max(handlerMs, 0.01)));
  /** Rows the next claim may lease: free slots plus the prefetch not yet filled. */
  const room = () => Math.max(0, Math.min(ctx.claimBatch, concurrency - busy + prefetch() - buffer.length));

  /**
   * Starts buffered rows while slots are free; a row past half its lease goes back instead. A
   * slot is free once its handler has acked: the handler only waits for the commit then. At most
   * MYSQL_CLAIM_BATCH such handlers wait beyond `concurrency`.
   */
  const fill = () => {
    while (
      busy < concurrency &&
      inFlight.size < concurrency + ctx.claimBatch &&
      buffer.length > 0 &&
      !signal.aborted
    ) {
      const next = buffer.shift()!;
      if (performance.now() - next.at > ctx.leaseMs / 2) giveBack.push(next);
      else handOut(next);
    }
  };

  const handOut = ({ row, token }: Claimed) => {
    const started = performance.now();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      busy -= 1;
      const ms = performance.now() - started;
      handlerMs = Number.isFinite(handlerMs) ? handlerMs * 0.9 + ms * 0.1 : ms;
      fill();
      nudge.wake();
    };
    const delivery = createDelivery(
      {
        pool: ctx.pool,
        logger: ctx.logger,
        ack: (id, ackToken) => {
          release();
          if (!carrying) return ctx.acks.ack(tables.queue, id, ackToken);
          return new Promise((resolve, reject) => {
            if (acks.length === 0) {
              acksSince = performance.now();
              setTimeout(() => nudge.wake(), ACK_MAX_WAIT_MS).unref();
            }
            acks.push({ id, token: ackToken, resolve, reject });
            nudge.wake();
          });
        },
      },
      tables,
      row,
      token,
    );
    busy += 1;
    const running: Promise<void> = handler(delivery)
      .catch((error) => {
        // Left unsettled: the lease brings the job back.
        ctx.logger.error({ err: error, messageId: row.id }, 'delivery handler failed');
      })
      .finally(() => {
        inFlight.delete(running);
        release();
        fill();
        nudge.wake();
      });
    inFlight.add(running);
  };

  const startClaim = () => {
    const batch = acks.splice(0, MAX_ACK_BATCH);
    const back = giveBack.splice(0);
    const limit = room();
    const token = `${owner}-${(claims++).toString(36)}`;
    claiming = true;
    claim(ctx, tables.queue, limit, token, batch, back)
      .then(
        (result) => {
          claiming = false;
          warnLostAcks(ctx.logger, tables.queue, result.lostAcks);
          for (const a of batch) a.resolve();
          failed = false;
          if (!connected) {
            connected = true;
            ctx.logger.info({ table: tables.queue }, 'mysql connection restored; consuming again');
            options.onConnectionChange?.(true);
          }
          if (result.rows.length > 0) {
            dry = false;
            pause = ctx.pollMinMs;
            const at = performance.now();
            for (const row of result.rows) buffer.push({ row, token, at });
            fill();
          } else if (limit > 0) {
            dry = true;
          }
        },
        (error) => {
          claiming = false;
          for (const a of batch) a.reject(error);
          // Still leased to us: they come back when that lease ends.
          dry = true;
          failed = true;
          if (connected && isConnectionError(error)) {
            connected = false;
            ctx.logger.warn({ err: error, table: tables.queue }, 'mysql connection lost; retrying');
            options.onConnectionChange?.(false, error as Error);
          } else if (!isConnectionError(error)) {
            ctx.logger.error({ err: error, table: tables.queue }, 'claim failed; retrying');
          }
        },
      )
      .finally(() => nudge.wake());
  };

  /**
   * Claim once half the room (free slots plus prefetch) is empty. Waiting acks go out at once
   * when no leased work is left to run; otherwise with that claim, or after ACK_MAX_WAIT_MS.
   */
  const wantsClaim = () => {
    if (claiming) return false;
    if (
      acks.length > 0 &&
      (buffer.length === 0 || busy === 0 || dry || performance.now() - acksSince >= ACK_MAX_WAIT_MS)
    )
      return true;
    if (dry) return false;
    return room() >= Math.max(1, Math.ceil((concurrency + prefetch()) / 2));
  };

  options.onReady?.();
  while (!signal.aborted) {
    if (wantsClaim()) {
      // Let the handlers that finish in this turn of the event loop add their acks first.
      await nextTurn();
      if (signal.aborted) break;
      if (wantsClaim()) startClaim();
      continue;
    }
    if (dry && !claiming) {
      // Idle: a publish here, an ack or the end of a handler (or the pause) starts the next poll.
      const cut = new AbortController();
      await Promise.race([
        failed
          ? ctx.wakeups.wait('', ctx.pollMaxMs, cut.signal)
          : ctx.wakeups.wait(tables.queue, pause, cut.signal),
        nudge.wait(),
        stopped,
      ]);
      cut.abort();
      dry = false;
      if (!failed) pause = Math.min(pause * 2, ctx.pollMaxMs);
      continue;
    }
    await Promise.race([nudge.wait(), stopped]);
  }

  // Draining: no more claims; rows leased but not started go back at once, and the acks of the
  // handlers still running are deleted as they come.
  while (claiming) await nudge.wait();
  const unstarted = [...giveBack.splice(0), ...buffer.splice(0)];
  if (unstarted.length > 0) {
    await retryOnStaleConnection(() =>
      ctx.pool.query(giveBackSql(tables.queue), giveBackValues(unstarted)),
    ).catch((error) =>
      ctx.logger.warn(
        { err: error, table: tables.queue },
        'could not return unstarted jobs; their lease brings them back',
      ),
    );
  }
  while (inFlight.size > 0 || acks.length > 0) {
    if (acks.length === 0) {
      await nudge.wait();
      continue;
    }
    const batch = acks.splice(0, MAX_ACK_BATCH);
    try {
      const lost = await retryOnStaleConnection(() => deleteAcked(ctx.pool, tables.queue, batch));
      warnLostAcks(ctx.logger, tables.queue, lost);
      for (const a of batch) a.resolve();
    } catch (error) {
      for (const a of batch) a.reject(error);
    }
  }
  carrying = false;
}

/** Ends the lease of rows no handler has started, making them due now. */
function giveBackSql(table: string): string {
  return `UPDATE ${quoteIdentifier(table)} SET lease_owner = NULL, available_at = NOW(3) WHERE id IN (?) AND lease_owner IN (?)`;
}

function giveBackValues(rows: readonly Claimed[]): unknown[] {
  return [rows.map((r) => r.row.id), [...new Set(rows.map((r) => r.token))]];
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * One transaction in two round trips: delete the acked rows, put back `back`, and select up to
 * `limit` due rows; then lease them to `token` and commit. (Statements are sent together: on a
 * busy machine each round trip costs more than the statements.) Repeating it after a dead
 * pooled socket is safe: a second DELETE finds nothing, and rows a lost commit leased come back
 * when that lease ends.
 */
async function claim(
  ctx: ConsumerContext,
  table: string,
  limit: number,
  token: string,
  acks: readonly PendingAck[],
  back: readonly Claimed[],
): Promise<{ rows: MessageRow[]; lostAcks: number }> {
  const t = quoteIdentifier(table);
  const statements = ['START TRANSACTION'];
  const values: unknown[] = [];
  if (acks.length > 0) {
    statements.push(deleteAckedSql(table));
    values.push(...deleteAckedValues(acks));
  }
  if (back.length > 0) {
    statements.push(giveBackSql(table));
    values.push(...giveBackValues(back));
  }
  if (limit > 0) {
    // payload and job_type only matter for rows written by plain SQL (no body): not sent otherwise.
    statements.push(`SELECT id, IF(body IS NULL, job_type, '') AS job_type, IF(body IS NULL, payload, NULL) AS payload,
       body, attempt FROM ${t} FORCE INDEX (claim_order)
       WHERE available_at <= NOW(3) ORDER BY priority, available_at LIMIT ? FOR UPDATE SKIP LOCKED`);
    values.push(limit);
  }
  return retryOnStaleConnection(async () => {
    const connection = await ctx.pool.getConnection();
    try {
      const [results] = await connection.query(statements.join(';\n'), values);
      const sets = results as unknown[];
      const lostAcks = acks.length > 0 ? acks.length - affectedRows(sets[1]) : 0;
      const rows = limit > 0 ? (sets[sets.length - 1] as MessageRow[]) : [];
      if (rows.length === 0) {
        await connection.query('COMMIT');
      } else {
        await connection.query(
          `UPDATE ${t} SET lease_owner = ?, available_at = NOW(3) + INTERVAL ? MICROSECOND WHERE id IN (?);\nCOMMIT`,
          [token, ctx.leaseMs * 1000, rows.map((r) => r.id)],
        );
      }
      return { rows, lostAcks };
    } catch (error) {
      await connection.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      connection.release();
    }
  });
}
