/**
 * The consumer of one SQLite queue table: core's pull loop with this broker's commands. A fetch
 * is one claim statement (claimSql) committed together with the acks queued since the last
 * commit, so a busy consumer pays one sync for a claim and a batch of acks.
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
import type { WriteBatcher } from './database';
import { SqliteDelivery } from './delivery';
import type { QueueTable } from './queue-table';

/**
 * The pause after a failed claim (SQLITE_BUSY past the busy timeout, SQLITE_FULL, an I/O
 * error): core's full-jitter backoff from 100 ms up to 5 s, so a consumer neither spins on a
 * locked or full file nor waits long once it is writable again.
 */
const CLAIM_BACKOFF: BackoffOptions = { baseMs: 100, maxMs: 5_000 };

export interface ConsumerContext {
  writes: WriteBatcher;
  /** Woken by publishes in this process, keyed by queue name; other processes' work is polled. */
  wakeups: Wakeups;
  leaseMs: number;
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
  options.onReady?.();
  await runPullLoop({
    signal: options.signal,
    concurrency: options.concurrency,
    handler,
    what: `sqlite table ${table.table}`,
    ...(ctx.logger ? { logger: ctx.logger } : {}),
    ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {}),
    // A locked or full file is an outage, not the end of the consumer: the acks of the failed
    // claim's transaction failed with it (their rows come back after their lease).
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
      const now = Date.now();
      // The acks queued since the last commit go in the same transaction as the claim.
      const rows = writes.flushWith(() =>
        table.claim.all({ owner, expires: now + leaseMs, now, limit: max }),
      );
      rows.sort((a, b) => a.priority - b.priority || a.id - b.id);
      const deliveries = new Array<SqliteDelivery>(rows.length);
      for (let i = 0; i < rows.length; i++)
        deliveries[i] = new SqliteDelivery(table, writes, rows[i]!, owner, wake);
      return deliveries;
    },
  });
  writes.flush();
}
