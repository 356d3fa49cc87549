// Upgrades of tables made by an earlier version, run when a store opens them.
import { quoteIdentifier } from './config';
import type { Pool } from './pool';

/** Adds a column a table made by an earlier version lacks; another process adding it first is fine. */
export async function addColumnIfMissing(
  pool: Pool,
  table: string,
  column: string,
  type: string,
): Promise<void> {
  const [found] = (await pool.query(`SHOW COLUMNS FROM ${table} LIKE ?`, [column])) as unknown as [unknown[]];
  if (found.length > 0) return;
  try {
    await pool.query(`ALTER TABLE ${table} ADD COLUMN ${quoteIdentifier(column)} ${type}`);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ER_DUP_FIELDNAME') throw error;
  }
}

/** Adds an index a table made by an earlier version lacks; another process adding it first is fine. */
export async function addIndexIfMissing(
  pool: Pool,
  table: string,
  name: string,
  columns: string,
): Promise<void> {
  const [found] = (await pool.query(`SHOW INDEX FROM ${table} WHERE Key_name = ?`, [name])) as unknown as [
    unknown[],
  ];
  if (found.length > 0) return;
  try {
    await pool.query(`ALTER TABLE ${table} ADD INDEX ${quoteIdentifier(name)} ${columns}`);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ER_DUP_KEYNAME') throw error;
  }
}
