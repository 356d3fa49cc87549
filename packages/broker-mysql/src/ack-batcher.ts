/**
 * Acks: one `DELETE ... WHERE id IN (...) AND lease_owner IN (...)` for many of them, and
 * ack() resolves only after the commit that holds its DELETE (with the server default
 * innodb_flush_log_at_trx_commit=1, after the redo log is on disk).
 *
 * While a consumer's claim loop runs, its deliveries' acks ride in its next claim transaction
 * (consumer.ts): one durable commit deletes the finished batch and leases the next one. The
 * AckBatcher here takes the acks no claim loop will carry: those given after their consumer
 * stopped (a delivery kept past its handler, a consumer draining). Each table's batch is sent as
 * soon as the previous one has committed, so acks that arrive during a DELETE share the next.
 */
import type { Logger } from '@polyqueue/core';
import { quoteIdentifier } from './config';
import { affectedRows, type Pool, type PoolConnection, retryOnStaleConnection } from './pool';

export interface PendingAck {
  id: string;
  /** The lease_owner the claim wrote: an ack only deletes a row its own lease still holds. */
  token: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** The most rows one DELETE removes, keeping each statement and its locks small. */
export const MAX_ACK_BATCH = 500;

/**
 * Deletes the rows of these acks whose lease is still theirs; returns how many were not (their
 * lease ran out and another consumer claimed the job, which now settles it).
 */
export async function deleteAcked(
  connection: Pool | PoolConnection,
  table: string,
  acks: readonly PendingAck[],
): Promise<number> {
  const [result] = await connection.query(deleteAckedSql(table), deleteAckedValues(acks));
  return acks.length - affectedRows(result);
}

export function deleteAckedSql(table: string): string {
  return `DELETE FROM ${quoteIdentifier(table)} WHERE id IN (?) AND lease_owner IN (?)`;
}

export function deleteAckedValues(acks: readonly PendingAck[]): unknown[] {
  return [acks.map((a) => a.id), [...new Set(acks.map((a) => a.token))]];
}

export function warnLostAcks(logger: Logger, table: string, missing: number): void {
  if (missing > 0) logger.warn({ table, missing }, 'acks found their lease taken by another consumer');
}

export class AckBatcher {
  readonly #pending = new Map<string, PendingAck[]>();
  readonly #flushing = new Map<string, Promise<void>>();

  constructor(
    private readonly pool: Pool,
    private readonly logger: Logger,
  ) {}

  ack(table: string, id: string, token: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const pending = this.#pending.get(table) ?? [];
      this.#pending.set(table, pending);
      pending.push({ id, token, resolve, reject });
      if (!this.#flushing.has(table)) this.#startFlushing(table);
    });
  }

  /** Resolves when every ack given so far has been committed or has failed. */
  async drain(): Promise<void> {
    await Promise.all([...this.#flushing.values()]);
  }

  #startFlushing(table: string): void {
    const loop = (async () => {
      for (;;) {
        const pending = this.#pending.get(table) ?? [];
        if (pending.length === 0) break;
        const batch = pending.splice(0, MAX_ACK_BATCH);
        await this.#flush(table, batch);
      }
    })().finally(() => this.#flushing.delete(table));
    this.#flushing.set(table, loop);
  }

  async #flush(table: string, batch: PendingAck[]): Promise<void> {
    try {
      // Deleting twice is harmless, so a dead pooled socket is simply retried.
      const missing = await retryOnStaleConnection(() => deleteAcked(this.pool, table, batch));
      warnLostAcks(this.logger, table, missing);
      for (const a of batch) a.resolve();
    } catch (error) {
      for (const a of batch) a.reject(error);
    }
  }
}
