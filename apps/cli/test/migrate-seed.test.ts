/**
 * The seed article's Q4M row, as the article writes it, migrated with `polyqueue migrate` and
 * delivered by the email worker: a legacy table made by the article's CREATE TABLE in the local
 * MariaDB (InnoDB: MariaDB has no Q4M engine), the article's INSERT from the testkit's golden
 * corpus, the CLI and the email worker each as a child process, the embedded sqlite broker
 * between them and the worker's file outbox at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, watch } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SEED_CORPUS, seedSql } from '@polyqueue/testkit';
import { describe, expect, it } from 'vitest';
import { legacyDb, MYSQL_URL } from './legacy-db';

const CLI = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const EMAIL_WORKER = fileURLToPath(new URL('../../email-worker/src/main.ts', import.meta.url));
const CWD = fileURLToPath(new URL('..', import.meta.url));

const legacy = legacyDb();

interface Child {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// Sources through tsx, as in development (apps/api's end-to-end test runs the compiled bundles).
function run(main: string, args: string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], {
    cwd: CWD,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const result: Child = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (chunk) => {
    result.stdout += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    result.stderr += chunk;
  });
  return result;
}

/** Resolves with the first .eml file the outbox renames into place; rejects if the worker exits or after timeoutMs. */
function firstEmail(dir: string, worker: Child, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | undefined, file?: string) => {
      watcher.close();
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(file!);
    };
    const look = async () => {
      const eml = (await readdir(dir)).find((name) => name.endsWith('.eml'));
      if (eml) done(undefined, join(dir, eml));
    };
    const watcher = watch(dir, () => void look().catch((error) => done(error as Error)));
    const timer = setTimeout(
      () => done(new Error(`no email in ${dir} after ${timeoutMs} ms; worker stderr:\n${worker.stderr}`)),
      timeoutMs,
    );
    worker.exit.then(({ code, signal }) =>
      done(
        new Error(
          `the email worker exited (${code ?? signal}) before sending:\n${worker.stdout}${worker.stderr}`,
        ),
      ),
    );
    void look(); // in case it was written before the watch began
  });
}

function headersOf(raw: string): Record<string, string> {
  const headers: Record<string, string> = {};
  const head = raw.split('\r\n\r\n', 1)[0]!.replace(/\r\n[ \t]+/g, ' ');
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

describe("the seed article's Q4M row through `polyqueue migrate`", () => {
  it('is migrated as a valid job and the email worker delivers it', async () => {
    const example = SEED_CORPUS.find((e) => e.id === 'q4m-insert')!;
    const table = `job_queue_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    legacy.track(table);
    // The article's CREATE TABLE, with InnoDB for ENGINE=QUEUE.
    await legacy.db.query(`CREATE TABLE \`${table}\` (
      id INT AUTO_INCREMENT PRIMARY KEY,
      job_type VARCHAR(50) NOT NULL,
      payload TEXT NOT NULL,
      created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
    ) ENGINE=InnoDB`);
    if (example.write.kind !== 'sql') throw new Error('q4m-insert is an SQL producer');
    await legacy.db.query(seedSql(example.write.sql, table));

    const dir = mkdtempSync(join(tmpdir(), 'pq-migrate-seed-'));
    const outbox = join(dir, 'outbox');
    mkdirSync(outbox);
    const env = {
      BROKER: 'sqlite',
      SQLITE_PATH: join(dir, 'queue.db'),
      STATE_URL: `sqlite:${join(dir, 'state.db')}`,
      OUTBOX_DIR: outbox,
      MAIL_FROM: 'polyqueue <no-reply@example.test>',
      LOG_LEVEL: 'warn',
    };

    const migrate = run(CLI, ['migrate', '--from', `${MYSQL_URL}/${table}`, '--to', 'sqlite', '--json'], env);
    expect((await migrate.exit).code, migrate.stdout + migrate.stderr).toBe(0);
    expect(JSON.parse(migrate.stdout)).toMatchObject({
      read: 1,
      published: 1,
      invalid: 0,
      invalidRows: [],
      reconciled: true,
    });

    const worker = run(EMAIL_WORKER, [], env);
    try {
      const file = await firstEmail(outbox, worker, 30_000);
      const raw = await readFile(file, 'latin1');
      const headers = headersOf(raw);
      const want = 'delivered' in example.expect ? example.expect.delivered : undefined;
      expect(want).toBeDefined();
      expect(headers.to).toBe(want!.to);
      expect(headers.subject).toBe(want!.subject);
      expect(headers['message-id']).toBe(`<legacy-${table}-1@example.test>`);
      expect(headers['content-type']).toMatch(/^text\/plain/);
      expect(raw.slice(raw.indexOf('\r\n\r\n') + 4)).toBe(want!.body);
    } finally {
      worker.child.kill('SIGTERM');
      const { code } = await worker.exit;
      expect(code, worker.stderr).toBe(0);
    }
  }, 90_000);
});
