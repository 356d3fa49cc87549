/**
 * mysql, best raw loop: the fastest at-least-once table queue mysql2 allows, on the table a
 * hand-written queue needs (the classic id, job_type, payload, created_at plus the envelope;
 * no lease columns, the transaction is the lease), with the server's durability
 * (innodb_flush_log_at_trx_commit as configured).
 *
 *   enqueue  multi-row INSERT of `batch` rows per statement (one commit each), 4 connections
 *            in flight so the server can group-commit them
 *   process  4 connections, each looping: BEGIN; SELECT ... ORDER BY id LIMIT 100 FOR UPDATE
 *            SKIP LOCKED; every job handled at once; one DELETE ... WHERE id IN (the 100);
 *            COMMIT. One commit per 100 jobs.
 *
 * Why it stays correct: the rows stay locked by the open transaction while their handlers run
 * and are deleted in it, so a worker that dies rolls back and its rows are claimable again;
 * other workers skip them meanwhile. What it gives up against the driver: a handler runs
 * inside an open transaction (a slow handler holds row locks and an InnoDB snapshot; the
 * driver's leases avoid that), and there is no lease to renew or attempt count.
 */
import { encodeEnvelope } from '@polyqueue/core';
import mysql from 'mysql2/promise';
import { perSecond, type Rates } from '../measure';
import { windowed } from './best-loops';
import type { BaselineOptions } from './index';
import { createJobTable, dropJobTable, jobTableName, rowBatches } from './mysql-common';
import { rawHandler } from './raw-handler';

const CONNECTIONS = 4;
const READ_COUNT = 100;

export async function bestMysql(options: BaselineOptions): Promise<Rates> {
  const pool = mysql.createPool({
    uri: options.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
    connectionLimit: CONNECTIONS,
  });
  const table = jobTableName('best');
  try {
    await createJobTable(pool, table, ['body LONGTEXT NOT NULL']);
    const batches = rowBatches(options.jobs, options.batch, (e) => [
      e.type,
      JSON.stringify(e.payload),
      encodeEnvelope(e),
    ]);
    const t0 = performance.now();
    await windowed(batches, CONNECTIONS, (rows) =>
      pool.query(`INSERT INTO \`${table}\` (job_type, payload, body) VALUES ?`, [rows]),
    );
    const enqueuePerSec = perSecond(options.jobs, t0);

    let done = 0;
    let deadlocks = 0;
    const worker = async () => {
      const connection = await pool.getConnection();
      // As the driver's pool: no gap locks, so SKIP LOCKED claims and deletes do not deadlock.
      await connection.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      try {
        while (done < options.jobs) {
          await connection.beginTransaction();
          const [rows] = await connection.query(
            `SELECT id, body FROM \`${table}\` ORDER BY id LIMIT ${READ_COUNT} FOR UPDATE SKIP LOCKED`,
          );
          const taken = rows as { id: number; body: string }[];
          if (taken.length === 0) {
            await connection.commit();
            // Every remaining row is locked by another worker, which is about to finish.
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          await Promise.all(taken.map((row) => rawHandler(JSON.parse(row.body))));
          try {
            await connection.query(`DELETE FROM \`${table}\` WHERE id IN (?)`, [taken.map((row) => row.id)]);
            await connection.commit();
          } catch (error) {
            // A deadlock victim rolls back: its rows are claimable again and run again.
            if ((error as { errno?: number }).errno !== 1213) throw error;
            await connection.rollback();
            deadlocks += 1;
            continue;
          }
          done += taken.length;
        }
      } finally {
        connection.release();
      }
    };
    const t1 = performance.now();
    await Promise.all(Array.from({ length: CONNECTIONS }, worker));
    if (deadlocks > 0) process.stderr.write(`mysql best: ${deadlocks} deadlocked batch(es) retried\n`);
    return { enqueuePerSec, processPerSec: perSecond(options.jobs, t1) };
  } finally {
    await dropJobTable(pool, table);
    await pool.end();
  }
}
