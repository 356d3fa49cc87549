/**
 * The consumer of one SQLite queue table: core's pull loop with this broker's commands. A fetch
 * hands out rows leased ahead (consumer-batches.ts) or, when none are left, runs one transaction
 * that deletes the acks waiting since the last one, puts back rows that waited too long, and
 * claims the free slots plus a measured prefetch (claimSql); so a busy consumer pays one commit
 * per claim batch, acks included, and no WAL sync for it (UNSYNCED).
 */
import { randomUUID } from 'node:crypto';
import {
  type BackoffOptions,
  type ConsumeOptions,
  type DeliveryHandler,
  type Logger,
  runPullLoop,
  type Wakeups,
} from '@polyqueue/core';
import { ConsumerBatches } from './consumer-batches';
import type { WriteBatcher, WriteOptions } from './database';
import { SqliteDelivery } from './delivery';
import type { QueueTable } from './queue-table';
import type { Row } from './schema';

/**
 * The pause after a failed claim (SQLITE_BUSY past the busy timeout, SQLITE_FULL, an I/O
 * error): core's full-jitter backoff from 100 ms up to 5 s, so a consumer neither spins on a
 * locked or full file nor waits long once it is writable again.
 */
const CLAIM_BACKOFF: BackoffOptions = { baseMs: 100, maxMs: 5_000 };

/**
 * Leases, acks and rows put back commit without a WAL sync (WriteOptions.sync): a power cut
 * that loses them also ended every worker, and the rows come back. A lost lease is a redelivery,
 * as the crash makes anyway (its attempt count may read one lower); a lost ack redelivers a job
 * whose done mark, synced in the state store before the ack was asked for, skips it. A process
 * crash loses none of them. Retries and dead letters stay synced.
 */
const UNSYNCED: WriteOptions = { sync: false };

export interface ConsumerContext {
  writes: WriteBatcher;
  /** Woken by publishes in this process, keyed by queue name; other processes' work is polled. */
  wakeups: Wakeups;
  leaseMs: number;
  /** SqliteBrokerOptions.claimBatch: the most rows one claim leases (at least the concurrency). */
  claimBatch: number;
  pollMinMs: number;
  pollMaxMs: number;
  logger?: Logger;
}

export async function runConsumer(
  ctx: ConsumerContext,
  queue: string,
  table: QueueTable,
  handler: DeliveryHandler,
  options: ConsumeOptions,
): Promise<void> {
  const { writes, wakeups, leaseMs } = ctx;
  const owner = randomUUID();
  const wake = () => wakeups.wake(queue);
  const deleteAcks = (ids: readonly number[]) => {
    if (ids.length > 0) table.ackMany.run(owner, JSON.stringify(ids));
  };
  const giveBack = (rows: readonly Row[]) => {
    if (rows.length > 0) table.giveBack.run(owner, JSON.stringify(rows.map((r) => r.id)));
  };
  const batches = new ConsumerBatches(
    options.concurrency,
    Math.max(options.concurrency, ctx.claimBatch),
    () => {
      // Taken now, not when the write runs: a batch that fails is run again, write by write.
      const ids = batches.takeAcks();
      writes.defer(() => deleteAcks(ids), UNSYNCED);
    },
  );
  const handOut = (rows: readonly Row[]) => {
    const deliveries = new Array<SqliteDelivery>(rows.length);
    for (let i = 0; i < rows.length; i++)
      deliveries[i] = new SqliteDelivery(table, writes, batches, rows[i]!, owner, wake);
    return deliveries;
  };
  options.onReady?.();
  await runPullLoop({
    signal: options.signal,
    concurrency: options.concurrency,
    handler,
    what: `sqlite table ${table.table}`,
    ...(ctx.logger ? { logger: ctx.logger } : {}),
    ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {}),
    // A locked or full file is an outage, not the end of the consumer: the acks of the failed
    // claim's transaction wait for the next one.
    backoff: CLAIM_BACKOFF,
    // Claim in batches: with work in hand, wait until half the slots are free rather than
    // issuing one UPDATE per finished job.
    minFree: Math.ceil(options.concurrency / 2),
    idle: {
      minMs: ctx.pollMinMs,
      maxMs: ctx.pollMaxMs,
      wait: (ms, signal) => wakeups.wait(queue, ms, signal),
    },
    fetch: (max) => {
      const stale: Row[] = [];
      const ready = batches.take(max, leaseMs, stale);
      if (ready.length > 0) {
        if (stale.length > 0) writes.defer(() => giveBack(stale), UNSYNCED);
        return handOut(ready);
      }
      const now = Date.now();
      const acked = batches.takeAcks();
      let rows: Row[];
      try {
        // The writes queued since the last commit and the waiting acks go in the claim's transaction.
        rows = writes.flushWith(() => {
          deleteAcks(acked);
          giveBack(stale);
          return table.claim.all({ owner, expires: now + leaseMs, now, limit: batches.claimLimit(max) });
        }, UNSYNCED);
      } catch (error) {
        batches.restoreAcks(acked);
        throw error;
      }
      rows.sort((a, b) => a.priority - b.priority || a.id - b.id);
      for (let i = max; i < rows.length; i++) batches.buffer.push({ row: rows[i]!, claimedAt: now });
      return handOut(rows.length > max ? rows.slice(0, max) : rows);
    },
  });
  // Rows leased and never started go back now rather than after their lease.
  const unstarted = batches.buffer.splice(0).map((b) => b.row);
  const acked = batches.takeAcks();
  writes.flushWith(() => {
    deleteAcks(acked);
    giveBack(unstarted);
  }, UNSYNCED);
}
