/**
 * The job table of the mysql baselines (mysql-naive.ts, mysql-best.ts): the classic id,
 * job_type, payload, created_at of a hand-written queue, plus any columns a baseline adds, in a
 * table of its own per run.
 */
import { createEnvelope, type Envelope } from '@polyqueue/core';

interface Queryable {
  query(sql: string, values?: unknown): Promise<unknown>;
}

/** A fresh job table's name for one run: `<prefix>_<time>`. */
export function jobTableName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}`;
}

/** Creates the job table `table` with `extraColumns` (SQL column definitions). */
export async function createJobTable(
  db: Queryable,
  table: string,
  extraColumns: string[] = [],
): Promise<void> {
  await db.query(`CREATE TABLE \`${table}\` (
      id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
      job_type VARCHAR(100) NOT NULL,
      payload LONGTEXT NOT NULL,
${extraColumns.map((column) => `      ${column},\n`).join('')}      created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
}

/** Drops a job table; never throws (clean-up after a run that may have failed). */
export async function dropJobTable(db: Queryable, table: string): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS \`${table}\``).catch(() => {});
}

/** `jobs` no-op envelopes as rows of `row`, cut into multi-row INSERT batches of `size`. */
export function rowBatches<Row>(jobs: number, size: number, row: (envelope: Envelope) => Row): Row[][] {
  const batches: Row[][] = [];
  for (let i = 0; i < jobs; i += size) {
    batches.push(
      Array.from({ length: Math.min(size, jobs - i) }, (_, k) =>
        row(createEnvelope('bench_job', { i: i + k })),
      ),
    );
  }
  return batches;
}
