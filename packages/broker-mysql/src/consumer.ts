/**
 * The claim loop of one consumer on one queue table. Its unit of work is one short transaction
 * that settles the finished batch and leases the next (claim.ts).
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
 * publish from the same process, or an ack of its own, wakes it at once. A failed claim is retried
 * after core's backoffDelay within the same bounds (and reported once each way when the connection
 * is lost and back). After the signal aborts the loop claims nothing more and deletes the acks of
 * its draining handlers; an ack given after consume() has returned goes through the broker's
 * AckBatcher.
 *
 * Why not core's runPullLoop: here a slot frees at the ack, not at the end of the handler (which
 * waits for the commit that the next claim makes), claims run while handlers are handed out,
 * and claimed rows wait in a prefetch buffer. The pull loop's "fetch when slots are free" would
 * wait for handlers that wait for it.
 */
import { randomBytes } from 'node:crypto';
import {
  backoffDelay,
  type ConsumeOptions,
  type Delivery,
  type DeliveryHandler,
  type Logger,
  type Wakeups,
  whenAborted,
} from '@polyqueue/core';
import type { AckBatcher } from './ack-batcher';
import { deleteAcked, type PendingAck, warnLostAcks } from './ack-batcher';
import { CarriedAcks } from './carried-acks';
import { type Claimed, claim, giveBack } from './claim';
import type { TableNames } from './config';
import { createDelivery, type DeliveryContext } from './delivery';
import { isConnectionError, type Pool, retryOnStaleConnection } from './pool';

export interface ConsumerContext {
  pool: Pool;
  logger: Logger;
  leaseMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  claimBatch: number;
  /** Deletes acks that arrive when no claim loop carries them. */
  acks: AckBatcher;
  /** Resolves early when this process publishes to the table (keyed by table name). */
  wakeups: Wakeups;
}

/**
 * How much work a consumer leases ahead of its free slots: about this long of handler time
 * (measured), so fast jobs come many per commit while slow ones are left to other consumers.
 */
const PREFETCH_HORIZON_MS = 100;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Consumes until options.signal aborts, then waits for in-flight handlers and their acks. */
export function runConsumer(
  ctx: ConsumerContext,
  tables: TableNames,
  handler: DeliveryHandler,
  options: ConsumeOptions,
): Promise<void> {
  return new ClaimLoop(ctx, tables, handler, options).run();
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

  readonly wake = (): void => {
    const resolve = this.#resolve;
    this.#promise = undefined;
    this.#resolve = undefined;
    resolve?.();
  };
}

class ClaimLoop {
  readonly #owner = randomBytes(8).toString('hex');
  readonly #signal: AbortSignal;
  readonly #concurrency: number;
  readonly #nudge = new Nudge();
  /** Acks waiting for the next transaction of this loop. */
  readonly #acks = new CarriedAcks(this.#nudge.wake);
  #claims = 0;
  /** Handlers running (started and not finished). */
  #running = 0;
  /** Deliveries handed out whose handler has neither acked nor finished. */
  #busy = 0;
  /** Leased to this consumer, waiting for a free slot. */
  readonly #buffer: Claimed[] = [];
  /** Leased rows to put back in the next transaction (they waited too long in the buffer). */
  #giveBack: Claimed[] = [];
  /** False once the loop has ended: later acks go to ctx.acks. */
  #carrying = true;
  /** Mean milliseconds from hand-out to ack (or end) of recent deliveries; sizes the prefetch. */
  #handlerMs = Number.POSITIVE_INFINITY;
  /** The idle pause, doubling from pollMinMs to pollMaxMs while claims find nothing. */
  #pause: number;
  /** Claims failed in a row; 0 while the database answers. */
  #failures = 0;
  #connected = true;
  #claiming = false;
  /** The last claim found nothing (or failed): wait for a wake-up or the pause before the next. */
  #dry = false;

  constructor(
    readonly ctx: ConsumerContext,
    readonly tables: TableNames,
    private readonly handler: DeliveryHandler,
    private readonly options: ConsumeOptions,
  ) {
    this.#signal = options.signal;
    this.#concurrency = options.concurrency;
    this.#pause = ctx.pollMinMs;
  }

  async run(): Promise<void> {
    const signal = this.#signal;
    const stopped = whenAborted(signal);
    this.options.onReady?.();
    while (!signal.aborted) {
      if (this.#wantsClaim()) {
        // Let the handlers that finish in this turn of the event loop add their acks first.
        await nextTurn();
        if (signal.aborted) break;
        if (this.#wantsClaim()) this.#startClaim();
        continue;
      }
      if (this.#dry && !this.#claiming) {
        // Idle: a publish here, an ack or the end of a handler (or the pause) starts the next poll.
        const cut = new AbortController();
        await Promise.race([
          this.#failures > 0
            ? this.ctx.wakeups.wait('', backoffDelay(this.#failures, this.#retryBackoff()), cut.signal)
            : this.ctx.wakeups.wait(this.tables.queue, this.#pause, cut.signal),
          this.#nudge.wait(),
          stopped,
        ]);
        cut.abort();
        this.#dry = false;
        if (this.#failures === 0) this.#pause = Math.min(this.#pause * 2, this.ctx.pollMaxMs);
        continue;
      }
      await Promise.race([this.#nudge.wait(), stopped]);
    }
    await this.#drain();
  }

  /** A failed claim is retried within the polling bounds: never slower than an idle poll. */
  #retryBackoff() {
    return { baseMs: this.ctx.pollMinMs, maxMs: this.ctx.pollMaxMs };
  }

  #prefetch(): number {
    return Math.min(
      this.ctx.claimBatch,
      Math.floor((this.#concurrency * PREFETCH_HORIZON_MS) / Math.max(this.#handlerMs, 0.01)),
    );
  }

  /** Rows the next claim may lease: free slots plus the prefetch not yet filled. */
  #room(): number {
    const free = this.#concurrency - this.#busy + this.#prefetch() - this.#buffer.length;
    return Math.max(0, Math.min(this.ctx.claimBatch, free));
  }

  /**
   * Claim once half the room (free slots plus prefetch) is empty. Waiting acks go out at once
   * when no leased work is left to run; otherwise with that claim, or after ACK_MAX_WAIT_MS.
   */
  #wantsClaim(): boolean {
    if (this.#claiming) return false;
    if (
      this.#acks.length > 0 &&
      (this.#buffer.length === 0 || this.#busy === 0 || this.#dry || this.#acks.overdue())
    )
      return true;
    if (this.#dry) return false;
    return this.#room() >= Math.max(1, Math.ceil((this.#concurrency + this.#prefetch()) / 2));
  }

  #startClaim(): void {
    const batch = this.#acks.take();
    const back = this.#giveBack;
    this.#giveBack = [];
    const limit = this.#room();
    const token = `${this.#owner}-${(this.#claims++).toString(36)}`;
    this.#claiming = true;
    claim(this.ctx.pool, this.ctx.leaseMs, this.tables.queue, limit, token, batch, back)
      .then(
        (result) => {
          this.#claiming = false;
          warnLostAcks(this.ctx.logger, this.tables.queue, result.lostAcks);
          for (const a of batch) a.resolve();
          this.#claimed();
          if (result.rows.length > 0) {
            this.#dry = false;
            this.#pause = this.ctx.pollMinMs;
            const at = performance.now();
            for (const row of result.rows) this.#buffer.push({ row, token, at });
            this.#fill();
          } else if (limit > 0) {
            this.#dry = true;
          }
        },
        (error) => {
          this.#claiming = false;
          for (const a of batch) a.reject(error);
          // Still leased to us: they come back when that lease ends.
          this.#dry = true;
          this.#claimFailed(error as Error);
        },
      )
      .finally(this.#nudge.wake);
  }

  #claimed(): void {
    this.#failures = 0;
    if (this.#connected) return;
    this.#connected = true;
    this.ctx.logger.info({ table: this.tables.queue }, 'mysql connection restored; consuming again');
    this.options.onConnectionChange?.(true);
  }

  #claimFailed(error: Error): void {
    this.#failures += 1;
    if (!isConnectionError(error)) {
      this.ctx.logger.error({ err: error, table: this.tables.queue }, 'claim failed; retrying');
    } else if (this.#connected) {
      this.#connected = false;
      this.ctx.logger.warn({ err: error, table: this.tables.queue }, 'mysql connection lost; retrying');
      this.options.onConnectionChange?.(false, error);
    }
  }

  /**
   * Starts buffered rows while slots are free; a row past half its lease goes back instead. A
   * slot is free once its handler has acked: the handler only waits for the commit then. At most
   * MYSQL_CLAIM_BATCH such handlers wait beyond `concurrency`.
   */
  #fill(): void {
    while (
      this.#busy < this.#concurrency &&
      this.#running < this.#concurrency + this.ctx.claimBatch &&
      this.#buffer.length > 0 &&
      !this.#signal.aborted
    ) {
      const next = this.#buffer.shift()!;
      if (performance.now() - next.at > this.ctx.leaseMs / 2) this.#giveBack.push(next);
      else this.#handOut(next);
    }
  }

  #handOut(claimed: Claimed): void {
    const handOut = new HandOut(this, claimed.row.id);
    const delivery: Delivery = createDelivery(handOut, this.tables, claimed.row, claimed.token);
    this.#busy += 1;
    this.#running += 1;
    this.handler(delivery).then(
      () => this.#handlerEnded(handOut),
      (error) => {
        // Left unsettled: the lease brings the job back.
        this.ctx.logger.error({ err: error, messageId: handOut.id }, 'delivery handler failed');
        this.#handlerEnded(handOut);
      },
    );
  }

  #handlerEnded(handOut: HandOut): void {
    this.#running -= 1;
    handOut.release();
    this.#fill();
    this.#nudge.wake();
  }

  /** @internal HandOut.release(): the delivery acked or its handler ended, whichever came first. */
  released(ms: number): void {
    this.#busy -= 1;
    this.#handlerMs = Number.isFinite(this.#handlerMs) ? this.#handlerMs * 0.9 + ms * 0.1 : ms;
    this.#fill();
    this.#nudge.wake();
  }

  /** @internal HandOut.ack(): rides with the next claim while the loop runs. */
  ack(id: string, token: string): Promise<void> {
    if (!this.#carrying) return this.ctx.acks.ack(this.tables.queue, id, token);
    return this.#acks.add(id, token);
  }

  /**
   * No more claims; rows leased but not started go back at once, and the acks of the handlers
   * still running are deleted as they come.
   */
  async #drain(): Promise<void> {
    const { ctx, tables } = this;
    while (this.#claiming) await this.#nudge.wait();
    const unstarted = [...this.#giveBack.splice(0), ...this.#buffer.splice(0)];
    if (unstarted.length > 0) {
      await giveBack(ctx.pool, tables.queue, unstarted).catch((error) =>
        ctx.logger.warn(
          { err: error, table: tables.queue },
          'could not return unstarted jobs; their lease brings them back',
        ),
      );
    }
    while (this.#running > 0 || this.#acks.length > 0) {
      if (this.#acks.length === 0) {
        await this.#nudge.wait();
        continue;
      }
      await this.#deleteAcks(this.#acks.take());
    }
    this.#carrying = false;
  }

  async #deleteAcks(batch: PendingAck[]): Promise<void> {
    try {
      const lost = await retryOnStaleConnection(() => deleteAcked(this.ctx.pool, this.tables.queue, batch));
      warnLostAcks(this.ctx.logger, this.tables.queue, lost);
      for (const a of batch) a.resolve();
    } catch (error) {
      for (const a of batch) a.reject(error);
    }
  }
}

/**
 * One handed-out delivery as its DeliveryContext: frees its slot once, at the ack or at the end
 * of its handler, and times it for the prefetch. One object per job instead of the closures.
 */
class HandOut implements DeliveryContext {
  readonly #started = performance.now();
  #released = false;

  constructor(
    private readonly loop: ClaimLoop,
    readonly id: string,
  ) {}

  get pool(): Pool {
    return this.loop.ctx.pool;
  }

  get logger(): Logger {
    return this.loop.ctx.logger;
  }

  ack(id: string, token: string): Promise<void> {
    this.release();
    return this.loop.ack(id, token);
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.loop.released(performance.now() - this.#started);
  }
}
