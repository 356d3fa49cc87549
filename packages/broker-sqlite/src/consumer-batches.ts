/**
 * What one SQLite consumer keeps between its claim transactions, so that a busy consumer pays
 * one commit per claim batch of up to claimBatch (100) jobs, as the best raw loop does, instead
 * of one per claim of its free slots plus one per turn of acks:
 *
 * - Acks wait here and are deleted by one statement in the next claim transaction, or
 *   ACK_MAX_WAIT_MS after the first of them (a commit of their own, shared with any other
 *   queued write), whichever comes first. ack() resolved at once before too (WriteBatcher.defer):
 *   a crash before that commit leaves the row leased, and it comes back after its lease.
 * - Prefetch: a claim leases the free slots plus about PREFETCH_HORIZON_MS of handler time
 *   (measured from hand-out to ack), so fast jobs come up to claimBatch per claim while
 *   slow ones are left to other consumers. Leased rows wait here for a slot, in claim order; one
 *   that has waited half its lease is put back (lease ended, due now, attempt not counted)
 *   instead of started, and so are all of them when the consumer stops.
 */
import type { Row } from './schema';

/** The longest an ack waits for the claim it rides with before it gets a commit of its own. */
export const ACK_MAX_WAIT_MS = 20;

/** How much handler time a consumer leases ahead of its free slots. */
const PREFETCH_HORIZON_MS = 100;

export interface BufferedRow {
  row: Row;
  /** Date.now() at the claim. */
  claimedAt: number;
}

export class ConsumerBatches {
  /** Row ids acked since the last commit that deleted acks. */
  acked: number[] = [];
  /** Rows leased to this consumer and not yet handed out, in claim order. */
  readonly buffer: BufferedRow[] = [];
  /** Mean milliseconds from hand-out to ack of recent deliveries; sizes the prefetch. */
  #handlerMs = Number.POSITIVE_INFINITY;
  #ackTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly concurrency: number,
    readonly claimBatch: number,
    /** Commits the waiting acks in a transaction of their own (ACK_MAX_WAIT_MS passed). */
    private readonly flushAcks: () => void,
  ) {}

  /** An ack of a delivery handed out `ms` ago: deleted with the next claim or on the timer. */
  ack(id: number, ms: number): void {
    this.#handlerMs = Number.isFinite(this.#handlerMs) ? this.#handlerMs * 0.9 + ms * 0.1 : ms;
    this.acked.push(id);
    if (this.#ackTimer === undefined) this.#ackTimer = setTimeout(this.#onAckTimer, ACK_MAX_WAIT_MS);
  }

  /** Hands the waiting acks to a transaction; put them back with restoreAcks if it fails. */
  takeAcks(): number[] {
    const ids = this.acked;
    this.acked = [];
    if (this.#ackTimer !== undefined) {
      clearTimeout(this.#ackTimer);
      this.#ackTimer = undefined;
    }
    return ids;
  }

  restoreAcks(ids: readonly number[]): void {
    if (ids.length === 0) return;
    this.acked.push(...ids);
    this.#ackTimer ??= setTimeout(this.#onAckTimer, ACK_MAX_WAIT_MS);
  }

  readonly #onAckTimer = (): void => {
    this.#ackTimer = undefined;
    if (this.acked.length > 0) this.flushAcks();
  };

  /** Rows the next claim leases when `free` slots are free: those plus the prefetch. */
  claimLimit(free: number): number {
    const prefetch = Math.floor((this.concurrency * PREFETCH_HORIZON_MS) / Math.max(this.#handlerMs, 0.01));
    return Math.max(free, Math.min(this.claimBatch, free + prefetch));
  }

  /**
   * Up to `max` buffered rows to start now; rows that have waited half their lease go to
   * `stale` (to be put back) instead.
   */
  take(max: number, leaseMs: number, stale: Row[]): Row[] {
    const rows: Row[] = [];
    const oldest = Date.now() - leaseMs / 2;
    while (rows.length < max && this.buffer.length > 0) {
      const next = this.buffer.shift()!;
      if (next.claimedAt < oldest) stale.push(next.row);
      else rows.push(next.row);
    }
    return rows;
  }
}
