/**
 * One claimed row as a Delivery. Every outcome checks `lease_owner`: a consumer whose lease ran
 * out and whose job another consumer claimed cannot settle that other delivery.
 *
 * ack() hands the row to its consumer's loop, which deletes it in the next claim transaction
 * (consumer.ts); it resolves once that transaction has committed. retry, deadLetter and extend
 * are rare and run their own statement, resolving after its commit.
 */
import type { Delivery, Logger, SettleOutcome } from '@polyqueue/core';
import { AlreadySettledError, decodeEnvelope, withAttempt } from '@polyqueue/core';
import { quoteIdentifier, type TableNames } from './config';
import { affectedRows, inTransaction, type Pool, retryOnStaleConnection } from './pool';
import { type MessageRow, rowBody } from './schema';

export interface DeliveryContext {
  pool: Pool;
  logger: Logger;
  /** Deletes the row, durably, before resolving. */
  ack(id: string, token: string): Promise<void>;
}

export function createDelivery(
  ctx: DeliveryContext,
  tables: TableNames,
  row: MessageRow,
  token: string,
): Delivery {
  const t = quoteIdentifier(tables.queue);
  const body = rowBody(row);
  const attempt = Number(row.attempt);
  let settled = false;
  const settle = (outcome: SettleOutcome) => {
    if (settled) throw new AlreadySettledError(row.id, outcome);
    settled = true;
  };
  return {
    messageId: row.id,
    body,
    attempt,
    async ack() {
      settle('ack');
      await ctx.ack(row.id, token);
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
      if (affectedRows(result) === 0) leaseLost(ctx.logger, row.id, 'retry');
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
      if (!moved) leaseLost(ctx.logger, row.id, 'deadLetter');
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
function leaseLost(logger: Logger, id: string, outcome: string): void {
  logger.warn({ messageId: id, outcome }, 'lease lost before settling; another consumer owns the job now');
}
