/**
 * Job status records and idempotency claims in MySQL / MariaDB (STATE_URL=mysql://...).
 *
 * Tables (created on first use; `?prefix=` in the URL changes `polyqueue`):
 * - `polyqueue_jobs`: one row per job, UNIQUE on idempotency_key, so createJob is atomic on the
 *   key: the INSERT either wins or hits the unique index, and the loser reads the winner.
 * - `polyqueue_idempotency`: one row per key, naming the owner of a live claim. A claim is one
 *   statement that can only succeed for one worker: INSERT IGNORE of a new key, or an UPDATE
 *   guarded by `expires_at <= NOW(3)` (an expired lease) or by the owner (a renewal). Renew,
 *   complete and release are single statements guarded by the owner. Time is the server's
 *   clock, so workers' clocks do not matter.
 * - Batches: claimMany is one multi-row upsert, each row guarded as claim's UPDATE is, and one
 *   read of the rows it left; completeMany one guarded UPDATE of the batch's rows and one
 *   multi-row INSERT IGNORE of the missing ones (and a read, only when some were refused).
 */
import type {
  ClaimEntry,
  ClaimResult,
  CompleteEntry,
  CreateJobResult,
  JobColumns,
  JobPatch,
  JobRecord,
  JobSearchFilter,
  JobSearchPage,
  JobStatus,
  StateStore,
} from '@polyqueue/core';
import {
  CLAIMED,
  DEFAULT_DONE_TTL_MS,
  decodeJobCursor,
  jobFromColumns,
  jobSearchPage,
  LISTED_JOB_COLUMNS,
  payloadText,
} from '@polyqueue/core';
import { quoteIdentifier } from './config';
import { createMysqlJobAttempts } from './job-attempts';
import { affectedRows, createMysqlPool, matchedRows, type Pool, retryOnStaleConnection } from './pool';
import { addColumnIfMissing, addIndexIfMissing } from './schema-upgrade';

/** mysql2 returns DATETIME columns as Dates. */
type JobRow = JobColumns<Date>;

/** An idempotency row as a batch reads it back. */
interface KeyRow {
  k: string;
  done: number;
  result: string | null;
  owner: string | null;
  remaining_ms: string;
}

/** By key, in the binary order of the k column's utf8mb4_bin collation (for BMP text). */
function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** How often, at most, claims also delete a batch of expired idempotency rows. */
const CLEANUP_EVERY_MS = 60_000;

export async function createMysqlStateStore(stateUrl: string): Promise<StateStore> {
  const url = new URL(stateUrl);
  const prefix = url.searchParams.get('prefix') ?? 'polyqueue';
  if (!/^[A-Za-z0-9_]+$/.test(prefix)) throw new Error('STATE_URL: prefix must be letters, digits or "_"');
  url.search = '';
  const pool = await createMysqlPool(url.toString(), { connectionLimit: 10 });
  const jobs = quoteIdentifier(`${prefix}_jobs`);
  const keys = quoteIdentifier(`${prefix}_idempotency`);
  let attempts: Awaited<ReturnType<typeof createMysqlJobAttempts>>;
  try {
    await pool.query(`CREATE TABLE IF NOT EXISTS ${jobs} (
      id VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      type VARCHAR(100) NOT NULL,
      queue VARCHAR(200) NOT NULL,
      status VARCHAR(20) NOT NULL,
      attempts INT UNSIGNED NOT NULL DEFAULT 0,
      last_error TEXT NULL,
      result LONGTEXT NULL,
      idempotency_key VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
      request_hash VARCHAR(128) NULL,
      progress TEXT NULL,
      payload TEXT NULL,
      created_at DATETIME(3) NOT NULL,
      updated_at DATETIME(3) NOT NULL,
      PRIMARY KEY (id),
      UNIQUE KEY idempotency_key (idempotency_key),
      KEY created_at (created_at, id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
    await pool.query(`CREATE TABLE IF NOT EXISTS ${keys} (
      k VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      done TINYINT(1) NOT NULL DEFAULT 0,
      result LONGTEXT NULL,
      expires_at DATETIME(3) NOT NULL,
      owner VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NULL,
      PRIMARY KEY (k),
      KEY expires_at (expires_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
    // Tables made before claims had owners, and before jobs had progress (context.progress).
    await addColumnIfMissing(pool, keys, 'owner', 'VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NULL');
    await addColumnIfMissing(pool, jobs, 'progress', 'TEXT NULL');
    await addColumnIfMissing(pool, jobs, 'payload', 'TEXT NULL'); // ... and before they kept their payload
    // GET /v1/jobs reads newest first; tables made before the search lack the index.
    await addIndexIfMissing(pool, jobs, 'created_at', '(created_at, id)');
    attempts = await createMysqlJobAttempts(pool, prefix); // `${prefix}_job_attempts`
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return Object.assign(new MysqlStateStore(pool, jobs, keys), attempts);
}

class MysqlStateStore implements StateStore {
  #lastCleanup = 0;

  constructor(
    private readonly pool: Pool,
    private readonly jobs: string,
    private readonly keys: string,
  ) {}

  async #query(sql: string, values: unknown[] = []): Promise<unknown> {
    const [result] = await retryOnStaleConnection(() => this.pool.query(sql, values));
    return result;
  }

  async createJob(record: JobRecord): Promise<CreateJobResult> {
    try {
      await this.pool.query(
        `INSERT INTO ${this.jobs} (id, type, queue, status, attempts, last_error, result, idempotency_key, request_hash, progress, payload, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          record.id,
          record.type,
          record.queue,
          record.status,
          record.attempts,
          record.lastError ?? null,
          record.result === undefined ? null : JSON.stringify(record.result),
          record.idempotencyKey ?? null,
          record.requestHash ?? null,
          record.progress === undefined ? null : JSON.stringify(record.progress),
          payloadText(record),
          new Date(record.createdAt),
          new Date(record.updatedAt),
        ],
      );
      return { created: true };
    } catch (error) {
      if ((error as { code?: string }).code !== 'ER_DUP_ENTRY') throw error;
      const existing =
        (record.idempotencyKey !== undefined
          ? await this.#jobWhere('idempotency_key', record.idempotencyKey)
          : undefined) ?? (await this.getJob(record.id));
      if (!existing) throw error;
      return { created: false, existing };
    }
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    return this.#jobWhere('id', id);
  }

  async #jobWhere(column: 'id' | 'idempotency_key', value: string): Promise<JobRecord | undefined> {
    const rows = (await this.#query(`SELECT * FROM ${this.jobs} WHERE ${column} = ?`, [value])) as JobRow[];
    const row = rows[0];
    return row ? jobFromColumns(row) : undefined;
  }

  async updateJob(id: string, patch: JobPatch, onlyIfStatus?: JobStatus): Promise<boolean> {
    const sets: string[] = [];
    const values: unknown[] = [];
    if (patch.status !== undefined) sets.push('status = ?') && values.push(patch.status);
    if (patch.attempts !== undefined) sets.push('attempts = ?') && values.push(patch.attempts);
    if (patch.lastError !== undefined) sets.push('last_error = ?') && values.push(patch.lastError);
    if (patch.result !== undefined) sets.push('result = ?') && values.push(JSON.stringify(patch.result));
    if (patch.progress !== undefined)
      sets.push('progress = ?') && values.push(JSON.stringify(patch.progress));
    sets.push('updated_at = ?');
    values.push(new Date(), id);
    let where = 'id = ?';
    if (onlyIfStatus !== undefined) {
      where += ' AND status = ?';
      values.push(onlyIfStatus);
    }
    const updated = await this.#query(`UPDATE ${this.jobs} SET ${sets.join(', ')} WHERE ${where}`, values);
    return matchedRows(updated) === 1;
  }

  async searchJobs(filter: JobSearchFilter, limit: number, cursor?: string): Promise<JobSearchPage> {
    const where: string[] = [];
    const values: unknown[] = [];
    for (const column of ['status', 'type', 'queue'] as const) {
      const value = filter[column];
      if (value !== undefined) where.push(`${column} = ?`) && values.push(value);
    }
    if (filter.q !== undefined) {
      // LOCATE with a binary operand is case-sensitive, as the other stores' substring match is.
      where.push('(id = ? OR idempotency_key = ? OR LOCATE(BINARY ?, last_error) > 0)');
      values.push(filter.q, filter.q, filter.q);
    }
    if (cursor !== undefined) {
      const after = decodeJobCursor(cursor);
      const at = new Date(after.createdAt);
      where.push('(created_at < ? OR (created_at = ? AND id < ?))');
      values.push(at, at, after.id);
    }
    values.push(limit + 1);
    const rows = (await this.#query(
      `SELECT ${LISTED_JOB_COLUMNS} FROM ${this.jobs} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at DESC, id DESC LIMIT ?`,
      values,
    )) as JobRow[];
    return jobSearchPage(rows.map(jobFromColumns), limit);
  }

  async claim(key: string, owner: string, leaseMs: number): Promise<ClaimResult> {
    await this.#cleanup();
    const lease = Math.max(1, Math.round(leaseMs)) * 1000;
    const inserted = await this.#query(
      `INSERT IGNORE INTO ${this.keys} (k, done, result, expires_at, owner) VALUES (?, 0, NULL, NOW(3) + INTERVAL ? MICROSECOND, ?)`,
      [key, lease, owner],
    );
    if (affectedRows(inserted) === 1) return CLAIMED;
    // Take over a lease (or a done record) that has expired, or renew the owner's own; the guard
    // makes it one winner.
    const taken = await this.#query(
      `UPDATE ${this.keys} SET done = 0, result = NULL, expires_at = NOW(3) + INTERVAL ? MICROSECOND, owner = ?
       WHERE k = ? AND (expires_at <= NOW(3) OR (done = 0 AND owner = ?))`,
      [lease, owner, key, owner],
    );
    if (affectedRows(taken) === 1) return CLAIMED;
    const rows = (await this.#query(
      `SELECT done, result, GREATEST(0, TIMESTAMPDIFF(MICROSECOND, NOW(3), expires_at)) DIV 1000 AS remaining_ms
       FROM ${this.keys} WHERE k = ?`,
      [key],
    )) as { done: number; result: string | null; remaining_ms: string }[];
    const row = rows[0];
    // Released or expired between the statements: a moment later the claim will succeed.
    if (!row) return { state: 'busy', retryInMs: 1 };
    if (Number(row.done) === 1)
      return { state: 'done', result: row.result === null ? null : JSON.parse(row.result) };
    return { state: 'busy', retryInMs: Math.max(1, Number(row.remaining_ms)) };
  }

  async claimMany(entries: readonly ClaimEntry[]): Promise<ClaimResult[]> {
    if (entries.length === 0) return [];
    await this.#cleanup();
    // Rows upserted in key order (stable, so a key's entries keep theirs): two batches then
    // lock shared keys in the same order and cannot deadlock on each other.
    const sorted = [...entries].sort(byKey);
    const values: unknown[] = [];
    for (const e of sorted) values.push(e.key, Math.max(1, Math.round(e.leaseMs)) * 1000, e.owner);
    // The guard of claim()'s UPDATE, per row. It holds as well after each assignment as before
    // (owner and done become what it asks for, expires_at last), so every column sees the same.
    const take = '(expires_at <= NOW(3) OR (done = 0 AND owner = VALUES(owner)))';
    await this.#query(
      `INSERT INTO ${this.keys} (k, done, result, expires_at, owner)
       VALUES ${sorted.map(() => '(?, 0, NULL, NOW(3) + INTERVAL ? MICROSECOND, ?)').join(', ')}
       ON DUPLICATE KEY UPDATE result = IF(${take}, NULL, result), owner = IF(${take}, VALUES(owner), owner),
         done = IF(${take}, 0, done), expires_at = IF(${take}, VALUES(expires_at), expires_at)`,
      values,
    );
    // Whoever the row names holds the key: each owner token is one delivery's.
    const rows = await this.#readKeys(entries.map((e) => e.key));
    return entries.map((e): ClaimResult => {
      const row = rows.get(e.key);
      // Expired and swept since the upsert: a moment later the claim will succeed.
      if (!row) return { state: 'busy', retryInMs: 1 };
      if (Number(row.done) === 1)
        return { state: 'done', result: row.result === null ? null : JSON.parse(row.result) };
      if (row.owner === e.owner) return CLAIMED;
      return { state: 'busy', retryInMs: Math.max(1, Number(row.remaining_ms)) };
    });
  }

  async #readKeys(keys: readonly string[]): Promise<Map<string, KeyRow>> {
    const rows = (await this.#query(
      `SELECT k, done, result, owner, GREATEST(0, TIMESTAMPDIFF(MICROSECOND, NOW(3), expires_at)) DIV 1000 AS remaining_ms
       FROM ${this.keys} WHERE k IN (${keys.map(() => '?').join(', ')})`,
      [...keys],
    )) as KeyRow[];
    return new Map(rows.map((row) => [row.k, row]));
  }

  async renew(key: string, owner: string, leaseMs: number): Promise<boolean> {
    const renewed = await this.#query(
      `UPDATE ${this.keys} SET expires_at = NOW(3) + INTERVAL ? MICROSECOND WHERE k = ? AND owner = ? AND done = 0`,
      [Math.max(1, Math.round(leaseMs)) * 1000, key, owner],
    );
    // A renewal within the same millisecond changes no column: MySQL then counts the row as
    // matched, not affected, so read the match count (CLIENT_FOUND_ROWS is off by default).
    return matchedRows(renewed) === 1;
  }

  async complete(key: string, owner: string, result: unknown, ttlMs = DEFAULT_DONE_TTL_MS): Promise<boolean> {
    const json = JSON.stringify(result ?? null);
    const ttl = Math.max(1, Math.round(ttlMs)) * 1000;
    // Done rows have no owner. The key is the owner's, or free: a key another owner has taken
    // meanwhile is left to that owner.
    const mine = await this.#query(
      `UPDATE ${this.keys} SET done = 1, result = ?, expires_at = NOW(3) + INTERVAL ? MICROSECOND, owner = NULL
       WHERE k = ? AND (owner = ? OR owner IS NULL)`,
      [json, ttl, key, owner],
    );
    if (matchedRows(mine) === 1) return true;
    const inserted = await this.#query(
      `INSERT IGNORE INTO ${this.keys} (k, done, result, expires_at, owner) VALUES (?, 1, ?, NOW(3) + INTERVAL ? MICROSECOND, NULL)`,
      [key, json, ttl],
    );
    return affectedRows(inserted) === 1;
  }

  async completeMany(entries: readonly CompleteEntry[]): Promise<boolean[]> {
    if (entries.length === 0) return [];
    const keys = entries.map((e) => e.key);
    // A key twice in one batch (rare: one delivery holds it, the other found it busy): each of
    // its marks depends on the one before, so the batch goes one by one.
    if (new Set(keys).size !== keys.length) {
      const done: boolean[] = [];
      for (const e of entries) done.push(await this.complete(e.key, e.owner, e.result, e.ttlMs));
      return done;
    }
    const rows = [...entries].sort(byKey).map((e) => ({
      key: e.key,
      owner: e.owner,
      json: JSON.stringify(e.result ?? null),
      ttl: Math.max(1, Math.round(e.ttlMs ?? DEFAULT_DONE_TTL_MS)) * 1000,
    }));
    const perKey = (value: (row: (typeof rows)[number]) => unknown) => ({
      sql: `CASE k ${rows.map(() => 'WHEN ? THEN ?').join(' ')} END`,
      values: rows.flatMap((row) => [row.key, value(row)]),
    });
    const result = perKey((row) => row.json);
    const ttl = perKey((row) => row.ttl);
    // complete()'s UPDATE for every entry at once: the key is the entry's owner's, or nobody's.
    const updated = await this.#query(
      `UPDATE ${this.keys} SET done = 1, result = ${result.sql}, expires_at = NOW(3) + INTERVAL ${ttl.sql} MICROSECOND, owner = NULL
       WHERE k IN (${rows.map(() => '?').join(', ')})
         AND (${rows.map(() => '(k = ? AND (owner = ? OR owner IS NULL))').join(' OR ')})`,
      [
        ...result.values,
        ...ttl.values,
        ...rows.map((row) => row.key),
        ...rows.flatMap((row) => [row.key, row.owner]),
      ],
    );
    // Then its INSERT IGNORE, for the keys that have no row.
    const inserted = await this.#query(
      `INSERT IGNORE INTO ${this.keys} (k, done, result, expires_at, owner)
       VALUES ${rows.map(() => '(?, 1, ?, NOW(3) + INTERVAL ? MICROSECOND, NULL)').join(', ')}`,
      rows.flatMap((row) => [row.key, row.json, row.ttl]),
    );
    // Every entry updated its row or inserted one: all done.
    if (matchedRows(updated) + affectedRows(inserted) === rows.length) return entries.map(() => true);
    // Some were refused: their rows still name another owner's live claim.
    const now = await this.#readKeys(keys);
    return entries.map((e) => Number(now.get(e.key)?.done ?? 1) === 1);
  }

  async release(key: string, owner: string): Promise<void> {
    await this.#query(`DELETE FROM ${this.keys} WHERE k = ? AND owner = ? AND done = 0`, [key, owner]);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Expired rows are dead weight; a bounded delete now and then keeps the table small. */
  async #cleanup(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastCleanup < CLEANUP_EVERY_MS) return;
    this.#lastCleanup = now;
    await this.pool.query(`DELETE FROM ${this.keys} WHERE expires_at < NOW(3) LIMIT 1000`).catch(() => {});
  }
}
