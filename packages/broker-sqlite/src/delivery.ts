import { AlreadySettledError, type Delivery, type SettleOutcome } from '@polyqueue/core';
import type { ConsumerBatches } from './consumer-batches';
import type { WriteBatcher } from './database';
import type { QueueTable } from './queue-table';
import type { Row } from './schema';

/**
 * One claimed row. Every outcome is a statement guarded by lease_owner, so a worker that lost
 * its lease (it stalled past SQLITE_LEASE_MS and another consumer took the row) changes nothing.
 * A class rather than closures: one allocation per job on the hot path.
 */
export class SqliteDelivery implements Delivery {
  readonly messageId: string;
  readonly body: string;
  readonly attempt: number;
  #settled = false;
  readonly #handedOut = performance.now();

  constructor(
    private readonly table: QueueTable,
    private readonly writes: WriteBatcher,
    private readonly batches: ConsumerBatches,
    private readonly row: Row,
    private readonly owner: string,
    private readonly wakeConsumers: () => void,
  ) {
    // A row inserted by plain SQL has no envelope: it reads as the foreign {type, payload} shape.
    this.body = row.envelope ?? `{"type":${JSON.stringify(row.job_type)},"payload":${row.payload}}`;
    this.messageId = row.job_id ?? `${table.table}-${row.id}`;
    this.attempt = row.attempts;
  }

  #settle(outcome: SettleOutcome): void {
    if (this.#settled) throw new AlreadySettledError(this.messageId, outcome);
    this.#settled = true;
  }

  /**
   * Resolves at once: the DELETE is committed with the consumer's next claim, or within
   * ACK_MAX_WAIT_MS in a commit of its own (consumer-batches.ts).
   */
  async ack(): Promise<void> {
    this.#settle('ack');
    this.batches.ack(this.row.id, performance.now() - this.#handedOut);
  }

  async retry(delayMs: number): Promise<void> {
    this.#settle('retry');
    await this.writes.write(() => this.table.retry.run(Date.now() + delayMs, this.row.id, this.owner));
    if (delayMs <= 0) this.wakeConsumers();
  }

  async deadLetter(reason: string): Promise<void> {
    this.#settle('deadLetter');
    await this.writes.write(() => {
      if (this.table.ack.run(this.row.id, this.owner).changes === 1) {
        this.table.toDead.run(this.messageId, this.row.job_type, this.body, reason, new Date().toISOString());
      }
    });
  }

  async extend(ms: number): Promise<void> {
    await this.writes.write(() => this.table.extend.run(Date.now() + ms, this.row.id, this.owner));
  }
}
