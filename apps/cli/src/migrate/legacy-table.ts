/**
 * The source side of `polyqueue migrate`: a legacy queue table shaped like the classic Q4M
 * example (id, job_type, payload, created_at), read in id order, and the bookkeeping table
 * `polyqueue_migrations` beside it that records each row once its job is published.
 *
 * The legacy table is only read, never changed: rows that are not valid jobs stay where they
 * are, and the table remains the fallback until the team drops it.
 */
import { createHash } from 'node:crypto';
import mysql from 'mysql2/promise';

export interface LegacySource {
  /** `mysql://user:pass@host:3306/database` without the table. */
  url: string;
  database: string;
  table: string;
  /** `database.table`: the key of this source in the bookkeeping table. */
  key: string;
}

/** `mysql://user:pass@host:3306/db/legacy_table` -> the database URL and the table. */
export function parseSource(from: string): LegacySource {
  let url: URL;
  try {
    url = new URL(from);
  } catch {
    throw new Error(
      `--from: not a URL (got ${JSON.stringify(from)}); use mysql://user:pass@host:3306/database/table`,
    );
  }
  if (url.protocol !== 'mysql:') throw new Error(`--from: must start with mysql:// (got ${url.protocol}//)`);
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length !== 2) {
    throw new Error(
      '--from: the path must be /database/table, e.g. mysql://root@127.0.0.1:3306/shop/queue_jobs',
    );
  }
  const [database, table] = parts as [string, string];
  if (!/^[A-Za-z0-9_$]+$/.test(table))
    throw new Error(`--from: table name "${table}" must be letters, digits, _ or $`);
  url.pathname = `/${encodeURIComponent(database)}`;
  return { url: url.toString(), database, table, key: `${database}.${table}` };
}

export interface LegacyRow {
  id: string;
  job_type: string | null;
  /** Text, or an object when the column is MySQL 8's JSON type. */
  payload: unknown;
  /** ms since the epoch, or null when the table has no created_at. */
  created_ms: string | null;
  /** How old the row is by the server's clock (ms), or null when the table has no created_at. */
  age_ms?: string | null;
}

export const BOOKKEEPING_TABLE = 'polyqueue_migrations';

export class LegacyTable {
  #hasCreatedAt = false;

  private constructor(
    private readonly connection: mysql.Connection,
    readonly source: LegacySource,
  ) {}

  static async open(source: LegacySource): Promise<LegacyTable> {
    const connection = await mysql.createConnection({
      uri: source.url,
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
    const table = new LegacyTable(connection, source);
    try {
      await table.#checkColumns();
    } catch (error) {
      await connection.end().catch(() => {});
      throw error;
    }
    return table;
  }

  get #t(): string {
    return `\`${this.source.table}\``;
  }

  async #checkColumns(): Promise<void> {
    let columns: { Field: string }[];
    try {
      [columns] = (await this.connection.query(`SHOW COLUMNS FROM ${this.#t}`)) as unknown as [
        { Field: string }[],
      ];
    } catch (error) {
      throw new Error(`--from: cannot read table ${this.source.key}: ${(error as Error).message}`);
    }
    const names = new Set(columns.map((c) => c.Field));
    const missing = ['id', 'job_type', 'payload'].filter((c) => !names.has(c));
    if (missing.length > 0) {
      throw new Error(
        `--from: table ${this.source.key} lacks column(s) ${missing.join(', ')}; expected id, job_type, payload, created_at`,
      );
    }
    this.#hasCreatedAt = names.has('created_at');
  }

  async count(): Promise<number> {
    const [rows] = await this.connection.query(`SELECT COUNT(*) AS n FROM ${this.#t}`);
    return Number((rows as { n: string }[])[0]!.n);
  }

  get #columns(): string {
    // UNIX_TIMESTAMP reads created_at in the session's time zone, the one the legacy producer
    // wrote it in; the age is measured on the server's clock, so the client's clock never matters.
    return this.#hasCreatedAt
      ? 'id, job_type, payload, ROUND(UNIX_TIMESTAMP(created_at) * 1000) AS created_ms, ROUND((UNIX_TIMESTAMP(NOW(3)) - UNIX_TIMESTAMP(created_at)) * 1000) AS age_ms'
      : 'id, job_type, payload, NULL AS created_ms, NULL AS age_ms';
  }

  /** The next rows after `afterId`, in id order. */
  async readChunk(afterId: string, limit: number): Promise<LegacyRow[]> {
    const [rows] = await this.connection.query(
      `SELECT ${this.#columns} FROM ${this.#t} WHERE id > ? ORDER BY id LIMIT ?`,
      [afterId, limit],
    );
    return rows as LegacyRow[];
  }

  /** The rows among `ids` that exist now, in id order (ids that were gaps when read past). */
  async readIds(ids: readonly string[]): Promise<LegacyRow[]> {
    if (ids.length === 0) return [];
    const [rows] = await this.connection.query(
      `SELECT ${this.#columns} FROM ${this.#t} WHERE id IN (?) ORDER BY id`,
      [ids],
    );
    return rows as LegacyRow[];
  }

  /** How many rows lie after `afterId` (a range scan of the primary key: cheap once caught up). */
  async countAfter(afterId: string): Promise<number> {
    const [rows] = await this.connection.query(`SELECT COUNT(*) AS n FROM ${this.#t} WHERE id > ?`, [
      afterId,
    ]);
    return Number((rows as { n: string }[])[0]!.n);
  }

  /** Age (ms, server clock) of the first row after `afterId`: 0 when none, null without created_at. */
  async oldestAgeAfter(afterId: string): Promise<number | null> {
    if (!this.#hasCreatedAt) return null;
    const [first] = await this.connection.query(
      `SELECT ROUND((UNIX_TIMESTAMP(NOW(3)) - UNIX_TIMESTAMP(created_at)) * 1000) AS age_ms FROM ${this.#t} WHERE id > ? ORDER BY id LIMIT 1`,
      [afterId],
    );
    const age = (first as { age_ms: string | null }[])[0]?.age_ms;
    return age === null || age === undefined ? 0 : Math.max(0, Number(age));
  }

  /**
   * One migration per source and target at a time: a MySQL named lock, held by this connection
   * and released by the server when the connection ends (a SIGKILLed run's lock goes with its
   * socket). Waits up to `waitSeconds` for a run that is just ending, then fails naming it.
   */
  async lockRun(target: string, waitSeconds: number): Promise<void> {
    const name = `polyqueue_migrate_${createHash('sha1').update(`${this.source.key}\n${target}`).digest('hex').slice(0, 40)}`;
    const [rows] = await this.connection.query('SELECT GET_LOCK(?, ?) AS got, IS_USED_LOCK(?) AS holder', [
      name,
      waitSeconds,
      name,
    ]);
    const row = (rows as { got: number | string | null; holder: string | null }[])[0]!;
    if (Number(row.got) !== 1) {
      throw new Error(
        `another polyqueue migrate of ${this.source.key} to ${target} is running (MySQL connection ${row.holder}); stop it first, or KILL ${row.holder} if it is stuck`,
      );
    }
  }

  /** Creates the bookkeeping table if needed (not in a dry run). */
  async ensureBookkeeping(): Promise<void> {
    await this.connection.query(`CREATE TABLE IF NOT EXISTS ${BOOKKEEPING_TABLE} (
      source VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      target VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      row_id BIGINT UNSIGNED NOT NULL,
      job_id VARCHAR(200) NOT NULL,
      published_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
      PRIMARY KEY (source, target, row_id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  }

  /** Which of the ids between first and last are already recorded as published to target. */
  async movedBetween(target: string, first: string, last: string): Promise<Set<string>> {
    try {
      const [rows] = await this.connection.query(
        `SELECT row_id FROM ${BOOKKEEPING_TABLE} WHERE source = ? AND target = ? AND row_id BETWEEN ? AND ?`,
        [this.source.key, target, first, last],
      );
      return new Set((rows as { row_id: string }[]).map((r) => String(r.row_id)));
    } catch (error) {
      // A dry run before any real run: nothing is recorded yet.
      if ((error as { code?: string }).code === 'ER_NO_SUCH_TABLE') return new Set();
      throw error;
    }
  }

  /** Records rows whose jobs the target has confirmed; committed before the next publish. */
  async recordMoved(target: string, rows: readonly { rowId: string; jobId: string }[]): Promise<void> {
    if (rows.length === 0) return;
    await this.connection.query(
      `INSERT IGNORE INTO ${BOOKKEEPING_TABLE} (source, target, row_id, job_id) VALUES ?`,
      [rows.map((r) => [this.source.key, target, r.rowId, r.jobId])],
    );
  }

  /** How many rows of this source are recorded as moved to target. */
  async recordedCount(target: string): Promise<number> {
    try {
      const [rows] = await this.connection.query(
        `SELECT COUNT(*) AS n FROM ${BOOKKEEPING_TABLE} WHERE source = ? AND target = ?`,
        [this.source.key, target],
      );
      return Number((rows as { n: string }[])[0]!.n);
    } catch (error) {
      if ((error as { code?: string }).code === 'ER_NO_SUCH_TABLE') return 0;
      throw error;
    }
  }

  /**
   * Rows of the legacy table that are not recorded as moved to target: after a final drain,
   * exactly the invalid rows left behind.
   */
  async unmovedCount(target: string): Promise<number> {
    try {
      const [rows] = await this.connection.query(
        `SELECT COUNT(*) AS n FROM ${this.#t} t LEFT JOIN ${BOOKKEEPING_TABLE} m
           ON m.source = ? AND m.target = ? AND m.row_id = t.id
         WHERE m.row_id IS NULL`,
        [this.source.key, target],
      );
      return Number((rows as { n: string }[])[0]!.n);
    } catch (error) {
      if ((error as { code?: string }).code === 'ER_NO_SUCH_TABLE') return this.count();
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.connection.end();
  }
}
