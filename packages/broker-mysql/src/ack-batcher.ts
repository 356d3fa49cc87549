/**
 * Acks as few commits as the load allows. Each ack() joins the next batch for its table; a batch
 * is sent as soon as the previous one of that table has committed, as one
 * `DELETE ... WHERE id IN (...) AND lease_owner IN (...)`. At low load a batch holds one ack and
 * goes out at once (no added latency); under load, acks that arrive while a DELETE is committing
 * share the next commit, so the redo-log flush (innodb_flush_log_at_trx_commit=1, every
 * commit durable) is paid once per batch instead of once per job. ack() resolves only after the
 * commit that contains it.
 */
import type { Logger } from '@polyqueue/core';
import { quoteIdentifier } from './config';
import { affectedRows, type Pool, retryOnStaleConnection } from './pool';

interface PendingAck {
  id: string;
  token: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** The most rows one DELETE removes, keeping each statement and its locks small. */
const MAX_BATCH = 500;

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
        const batch = pending.splice(0, MAX_BATCH);
        await this.#flush(table, batch);
      }
    })().finally(() => this.#flushing.delete(table));
    this.#flushing.set(table, loop);
  }

  async #flush(table: string, batch: PendingAck[]): Promise<void> {
    try {
      // Deleting twice is harmless, so a dead pooled socket is simply retried.
      const [result] = await retryOnStaleConnection(() =>
        this.pool.query(`DELETE FROM ${quoteIdentifier(table)} WHERE id IN (?) AND lease_owner IN (?)`, [
          batch.map((a) => a.id),
          [...new Set(batch.map((a) => a.token))],
        ]),
      );
      const missing = batch.length - affectedRows(result);
      if (missing > 0) {
        // Their leases ran out and other consumers claimed them; those consumers settle them now.
        this.logger.warn({ table, missing }, 'acks found their lease taken by another consumer');
      }
      for (const a of batch) a.resolve();
    } catch (error) {
      for (const a of batch) a.reject(error);
    }
  }
}
