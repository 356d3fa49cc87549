/**
 * The mysql2 pool every part of the driver shares, with the session settings the queue relies
 * on, plus small helpers: one transaction, and one retry after a connection that died idle.
 */
import mysql, { type Pool, type PoolConnection } from 'mysql2/promise';

export type { Pool, PoolConnection };

export interface PoolOptions {
  connectionLimit?: number;
  /**
   * Lets one query carry several statements (the broker's claim sends its transaction in two
   * round trips). Values still go through placeholders and identifiers through quoteIdentifier.
   */
  multipleStatements?: boolean;
}

/**
 * A pool whose sessions run in UTC and READ COMMITTED. UTC: DATETIME columns and NOW(3) mean
 * the same instant in every process. READ COMMITTED: a claim's `SELECT ... FOR UPDATE` takes no
 * gap locks, so it never blocks a producer inserting new rows behind it.
 * When the URL's database does not exist yet it is created, so a fresh server works at once.
 */
export async function createMysqlPool(url: string, options: PoolOptions = {}): Promise<Pool> {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '').split('/')[0] ?? '');
  const pool = open(url, options);
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    if ((error as { code?: string }).code !== 'ER_BAD_DB_ERROR' || !database) {
      await pool.end().catch(() => {});
      throw error;
    }
    await pool.end().catch(() => {});
    const bare = new URL(url);
    bare.pathname = '/';
    const admin = await mysql.createConnection({ ...connectionConfig(bare.toString()) });
    try {
      await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database.replace(/`/g, '``')}\``);
    } finally {
      await admin.end();
    }
    return open(url, options);
  }
  return pool;
}

function open(url: string, options: PoolOptions): Pool {
  const pool = mysql.createPool({
    ...connectionConfig(url),
    connectionLimit: options.connectionLimit ?? 10,
    multipleStatements: options.multipleStatements ?? false,
    enableKeepAlive: true,
  });
  pool.pool.on('connection', (connection) => {
    // Queued on the connection before it is handed out, so every statement sees these settings.
    connection.query("SET SESSION time_zone = '+00:00'");
    connection.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
  });
  return pool;
}

function connectionConfig(url: string) {
  const parsed = new URL(url);
  return {
    host: decodeURIComponent(parsed.hostname) || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username) || 'root',
    password: decodeURIComponent(parsed.password) || undefined,
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '').split('/')[0] ?? '') || undefined,
    timezone: 'Z' as const,
    // Row ids are BIGINT: keep them exact, as strings.
    supportBigNumbers: true,
    bigNumberStrings: true,
    charset: 'utf8mb4',
    connectTimeout: 10_000,
  };
}

const CONNECTION_ERROR_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTCONN',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_CONNECTION_KILLED',
  'CR_SERVER_GONE_ERROR',
  'CR_SERVER_LOST',
]);

/** True for an error that says the connection or the server went away (not a bad statement). */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; fatal?: boolean; message?: string } | undefined;
  if (!e) return false;
  if (e.code && CONNECTION_ERROR_CODES.has(e.code)) return true;
  if (e.fatal) return true;
  return /closed state|connection lost|server has gone away/i.test(e.message ?? '');
}

/**
 * Runs fn once more when its connection turned out dead: after a server restart the pool may
 * still hold sockets that closed while idle, and the first statement on one fails. Only for
 * statements that are safe to repeat (a repeat after an unseen commit is at most a duplicate,
 * which at-least-once delivery allows).
 */
export async function retryOnStaleConnection<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!isConnectionError(error)) throw error;
    return fn();
  }
}

/** Runs fn in one transaction on one pooled connection; rolls back on any error. */
export async function inTransaction<T>(
  pool: Pool,
  fn: (connection: PoolConnection) => Promise<T>,
): Promise<T> {
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    const result = await fn(connection);
    await connection.commit();
    return result;
  } catch (error) {
    await connection.rollback().catch(() => {});
    throw error;
  } finally {
    connection.release();
  }
}

/**
 * The rows an UPDATE's WHERE matched, changed or not. affectedRows counts only changed rows
 * (the connection does not set CLIENT_FOUND_ROWS), so an update writing the values a row
 * already has would read as a miss; the server reports the match count in `info`.
 */
export function matchedRows(result: unknown): number {
  const info = (result as { info?: string }).info ?? '';
  const matched = /Rows matched:\s*(\d+)/.exec(info);
  return matched ? Number(matched[1]) : affectedRows(result);
}

/** affectedRows of an INSERT / UPDATE / DELETE result. */
export function affectedRows(result: unknown): number {
  return (result as { affectedRows?: number }).affectedRows ?? 0;
}
