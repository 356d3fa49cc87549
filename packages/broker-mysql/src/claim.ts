/**
 * The statements of one claim-loop transaction, in two round trips:
 *
 *     START TRANSACTION;
 *     DELETE FROM polyqueue_Q WHERE id IN (<acked>) AND lease_owner IN (<their claims>);
 *     SELECT ... FROM polyqueue_Q WHERE available_at <= NOW(3)
 *       ORDER BY priority, available_at LIMIT n FOR UPDATE SKIP LOCKED;
 *     -- then:
 *     UPDATE polyqueue_Q SET lease_owner = ?, available_at = NOW(3) + lease WHERE id IN (...);
 *     COMMIT;
 *
 * (Statements are sent together: on a busy machine each round trip costs more than the
 * statements.) The bench's naive baseline is the one-row-per-transaction form of this.
 */
import { deleteAckedSql, deleteAckedValues, type PendingAck } from './ack-batcher';
import { quoteIdentifier } from './config';
import { affectedRows, type Pool, retryOnStaleConnection } from './pool';
import type { MessageRow } from './schema';

/** A row leased to a consumer, waiting in its buffer for a slot. */
export interface Claimed {
  row: MessageRow;
  /** The lease_owner the claim wrote. */
  token: string;
  /** performance.now() at the claim. */
  at: number;
}

/**
 * One transaction: delete the acked rows, put back `back`, and select up to `limit` due rows;
 * then lease them to `token` for leaseMs and commit. Repeating it after a dead pooled socket is
 * safe: a second DELETE finds nothing, and rows a lost commit leased come back when that lease
 * ends.
 */
export async function claim(
  pool: Pool,
  leaseMs: number,
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
    const connection = await pool.getConnection();
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
          [token, leaseMs * 1000, rows.map((r) => r.id)],
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

/** Ends the lease of rows no handler has started (outside a claim: a draining consumer). */
export async function giveBack(pool: Pool, table: string, rows: readonly Claimed[]): Promise<void> {
  await retryOnStaleConnection(() => pool.query(giveBackSql(table), giveBackValues(rows)));
}

/** Ends the lease of rows no handler has started, making them due now. */
function giveBackSql(table: string): string {
  return `UPDATE ${quoteIdentifier(table)} SET lease_owner = NULL, available_at = NOW(3) WHERE id IN (?) AND lease_owner IN (?)`;
}

function giveBackValues(rows: readonly Claimed[]): unknown[] {
  return [rows.map((r) => r.row.id), [...new Set(rows.map((r) => r.token))]];
}
