/**
 * The dead letters of one queue: table `polyqueue_Q_dead`. A dead row keeps the queue row's
 * job_type, payload and body, so a redrive puts back exactly what was there, as a first attempt.
 */
import type { DeadLetter, DeadLetterStore } from '@polyqueue/core';
import { withAttempt } from '@polyqueue/core';
import { quoteIdentifier, type TableNames } from './config';
import { affectedRows, inTransaction, type Pool } from './pool';
import { rowBody } from './schema';

interface DeadRow {
  id: string;
  job_id: string;
  message_id: string;
  job_type: string;
  payload: string | null;
  body: string | null;
  priority: number;
  reason: string;
  dead_at_ms: string;
}

/** Dead letters moved back per transaction by redrive('all'). */
const REDRIVE_CHUNK = 500;

export function mysqlDeadLetters(
  pool: Pool,
  tables: TableNames,
  ensure: () => Promise<void>,
): DeadLetterStore {
  const dead = quoteIdentifier(tables.dead);
  const queue = quoteIdentifier(tables.queue);
  const columns = `id, job_id, message_id, job_type, payload, body, priority, reason,
    ROUND(UNIX_TIMESTAMP(dead_at) * 1000) AS dead_at_ms`;

  /** Moves the given dead rows back to the queue in the caller's transaction. */
  async function moveBack(connection: Parameters<Parameters<typeof inTransaction>[1]>[0], rows: DeadRow[]) {
    if (rows.length === 0) return 0;
    // The body gains the full envelope (attempt 1) keeping its id, so a row first written by SQL
    // keeps the job id it was given even though it gets a new row id.
    const values = rows.map((r) => [
      r.job_type,
      r.payload,
      withAttempt(rowBody(r), 1, r.message_id),
      r.priority,
    ]);
    await connection.query(`INSERT INTO ${queue} (job_type, payload, body, priority) VALUES ?`, [values]);
    await connection.query(`DELETE FROM ${dead} WHERE id IN (?)`, [rows.map((r) => r.id)]);
    return rows.length;
  }

  return {
    async list(limit) {
      await ensure();
      const [rows] = await pool.query(`SELECT ${columns} FROM ${dead} ORDER BY id LIMIT ?`, [
        Math.max(0, limit),
      ]);
      return (rows as DeadRow[]).map(
        (r): DeadLetter => ({
          id: r.job_id,
          body: rowBody(r),
          reason: r.reason,
          deadAt: new Date(Number(r.dead_at_ms)).toISOString(),
        }),
      );
    },

    async redrive(ids) {
      await ensure();
      if (ids !== 'all') {
        if (ids.length === 0) return 0;
        return inTransaction(pool, async (connection) => {
          const [rows] = await connection.query(
            `SELECT ${columns} FROM ${dead} WHERE job_id IN (?) ORDER BY id FOR UPDATE`,
            [[...ids]],
          );
          return moveBack(connection, rows as DeadRow[]);
        });
      }
      let total = 0;
      for (;;) {
        const moved = await inTransaction(pool, async (connection) => {
          const [rows] = await connection.query(
            `SELECT ${columns} FROM ${dead} ORDER BY id LIMIT ? FOR UPDATE`,
            [REDRIVE_CHUNK],
          );
          return moveBack(connection, rows as DeadRow[]);
        });
        total += moved;
        if (moved < REDRIVE_CHUNK) return total;
      }
    },

    async purge() {
      await ensure();
      const [result] = await pool.query(`DELETE FROM ${dead}`);
      return affectedRows(result);
    },
  };
}
