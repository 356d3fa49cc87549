/**
 * What the migrate tests share: the local MariaDB/MySQL with a legacy table shaped like the
 * classic Q4M example (dropped, with its migration records, after the file's tests), and a drain
 * of the target queue through the worker runtime counting the handler calls per job id.
 */
import { type Broker, createWorker, MemoryIdempotencyStore } from '@polyqueue/core';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll } from 'vitest';

export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const HINT = `MariaDB/MySQL at ${MYSQL_URL} (start: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; or set MYSQL_URL)`;

export interface LegacyDb {
  /** The connection, open from beforeAll to afterAll. */
  readonly db: mysql.Connection;
  /** Remembers a table to drop (with its migration records) after the file's tests. */
  track(table: string): string;
  /**
   * A new legacy table `<prefix>_<random>` (id, job_type, payload, created_at of type
   * `createdAt`) filled with `rows` (job_type, payload).
   */
  legacyTable(prefix: string, rows: [string, string][], createdAt?: string): Promise<string>;
}

/** Registers the connection's beforeAll and afterAll (which runs `cleanup` first). */
export function legacyDb(cleanup: () => void = () => {}): LegacyDb {
  let db: mysql.Connection | undefined;
  const tables: string[] = [];
  beforeAll(async () => {
    try {
      db = await mysql.createConnection({ uri: MYSQL_URL, supportBigNumbers: true, bigNumberStrings: true });
    } catch (error) {
      throw new Error(`cannot reach ${HINT}: ${(error as Error).message}`);
    }
  });
  afterAll(async () => {
    cleanup();
    for (const table of tables) {
      await db?.query(`DROP TABLE IF EXISTS \`${table}\``);
      await db?.query('DELETE FROM polyqueue_migrations WHERE source = ?', [`test.${table}`]).catch(() => {});
    }
    await db?.end();
  });
  const legacy: LegacyDb = {
    get db() {
      if (!db) throw new Error('the database connection is opened in beforeAll');
      return db;
    },
    track(table) {
      tables.push(table);
      return table;
    },
    async legacyTable(prefix, rows, createdAt = 'TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)') {
      const table = legacy.track(
        `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
      );
      await legacy.db.query(`CREATE TABLE \`${table}\` (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_type VARCHAR(64) NOT NULL,
    payload TEXT NOT NULL,
    created_at ${createdAt}
  )`);
      for (let i = 0; i < rows.length; i += 1_000) {
        await legacy.db.query(`INSERT INTO \`${table}\` (job_type, payload) VALUES ?`, [
          rows.slice(i, i + 1_000),
        ]);
      }
      return table;
    },
  };
  return legacy;
}

/**
 * Runs `messages` messages of the queue through the worker runtime (send_email handlers) and
 * returns the handler calls per job id, how many settled and how many were skipped as
 * duplicates; gives up after `timeoutMs` (the caller checks `settled`).
 */
export async function drainThroughWorker(
  broker: Broker,
  queue: string,
  messages: number,
  timeoutMs: number,
): Promise<{ calls: Map<string, number>; settled: number; duplicates: number }> {
  const calls = new Map<string, number>();
  let settled = 0;
  let duplicates = 0;
  const controller = new AbortController();
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const worker = createWorker({
    broker,
    queue,
    idempotency: new MemoryIdempotencyStore(),
    concurrency: 32,
    backoff: { baseMs: 10, maxMs: 50 },
    handlers: {
      send_email: {
        handle: async (_payload, ctx) =>
          void calls.set(ctx.envelope.id, (calls.get(ctx.envelope.id) ?? 0) + 1),
      },
    },
    onOutcome: (event) => {
      if (event.outcome === 'skipped_duplicate') duplicates += 1;
      if (event.outcome === 'succeeded' || event.outcome === 'skipped_duplicate') settled += 1;
      if (settled === messages) finish();
    },
  });
  const running = worker.run(controller.signal);
  const timeout = setTimeout(finish, timeoutMs);
  await finished;
  clearTimeout(timeout);
  controller.abort();
  await running;
  return { calls, settled, duplicates };
}
