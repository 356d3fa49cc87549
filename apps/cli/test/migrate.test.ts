/**
 * `polyqueue migrate` end to end: a legacy table in the local MariaDB, the CLI as a child
 * process, the embedded sqlite broker as the target.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import type { Broker } from '@polyqueue/core';
import { describe, expect, it } from 'vitest';
import { drainThroughWorker, legacyDb, MYSQL_URL } from './legacy-db';

// The source through tsx, as in development: these tests are about the command's behaviour.
// (The bundle, apps/cli/dist/main.js, is what `npm run polyqueue` runs.)
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const CWD = fileURLToPath(new URL('..', import.meta.url));
const BATCH = 100;

const legacy = legacyDb();

/** A legacy table shaped like the classic Q4M example, filled with `rows` (job_type, payload). */
const legacyTable = (rows: [string, string][]) =>
  legacy.legacyTable('legacy', rows, 'DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP');

function email(i: number): [string, string] {
  return [
    'send_email',
    JSON.stringify({ to: `user${i}@example.com`, subject: `Hello ${i}`, body: 'from the legacy queue' }),
  ];
}

interface CliRun {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cli(args: string[], env: Record<string, string>, onStderrLine?: (line: string) => void): CliRun {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: CWD,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: CliRun = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  let partial = '';
  child.stdout!.on('data', (chunk) => {
    run.stdout += chunk;
  });
  child.stderr!.on('data', (chunk) => {
    run.stderr += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) onStderrLine?.(line);
  });
  return run;
}

async function recorded(table: string): Promise<number> {
  const [rows] = await legacy.db.query(
    'SELECT COUNT(*) AS n FROM polyqueue_migrations WHERE source = ? AND target = ?',
    [`test.${table}`, 'sqlite'],
  );
  return Number((rows as { n: string }[])[0]!.n);
}

/** Runs every message of the queue through the worker runtime; returns handler calls per job id. */
async function drain(broker: Broker, queue: string, messages: number): Promise<Map<string, number>> {
  const { calls, settled } = await drainThroughWorker(broker, queue, messages, 120_000);
  expect(settled).toBe(messages);
  return calls;
}

describe('polyqueue migrate', () => {
  it('survives a SIGKILL midway: the rerun publishes the rest, every row reaches the workers once, counts reconcile', async () => {
    const total = 10_000;
    const table = await legacyTable(Array.from({ length: total }, (_, i) => email(i)));
    const dir = mkdtempSync(join(tmpdir(), 'pq-migrate-'));
    const env = { SQLITE_PATH: join(dir, 'target.db'), SQLITE_SYNCHRONOUS: 'NORMAL' };
    const args = [
      'migrate',
      '--from',
      `${MYSQL_URL}/${table}`,
      '--to',
      'sqlite',
      '--batch',
      String(BATCH),
      '--json',
    ];

    // First run: killed once about half the rows are published.
    const first = cli(args, env, (line) => {
      const published = Number(/published (\d+)/.exec(line)?.[1] ?? 0);
      if (published >= total / 2) first.child.kill('SIGKILL');
    });
    const killed = await first.exit;
    expect(
      killed.signal,
      `the first run should be killed midway; it ended with ${JSON.stringify(killed)}\n${first.stderr}`,
    ).toBe('SIGKILL');
    const movedBefore = await recorded(table);
    expect(movedBefore).toBeGreaterThan(0);
    expect(movedBefore).toBeLessThan(total);

    // Second run: completes, reconciles, publishes only what was not recorded.
    const second = cli(args, env);
    expect((await second.exit).code, second.stderr).toBe(0);
    const summary = JSON.parse(second.stdout);
    expect(summary).toMatchObject({
      read: total,
      alreadyMoved: movedBefore,
      published: total - movedBefore,
      invalid: 0,
    });
    expect(summary.reconciled).toBe(true);
    expect(summary.read).toBe(summary.published + summary.alreadyMoved + summary.invalid);
    expect(summary.recordedMoved).toBe(total);

    // Third run: nothing left to do.
    const third = cli(args, env);
    expect((await third.exit).code, third.stderr).toBe(0);
    expect(JSON.parse(third.stdout)).toMatchObject({
      read: total,
      published: 0,
      alreadyMoved: total,
      reconciled: true,
    });

    // The target: every row's job exactly once, under its stable id. The batch in flight at the
    // kill was published again by the second run with the same ids; the sqlite queue adds no
    // job whose id it already holds, and the idempotency store would run a duplicate once.
    const broker = await createBrokerFromEnv({ ...env, BROKER: 'sqlite' });
    try {
      const stats = await broker.stats('email');
      expect(stats.ready).toBe(total);
      const calls = await drain(broker, 'email', stats.ready);
      const [ids] = await legacy.db.query(`SELECT id FROM \`${table}\` ORDER BY id`);
      const expected = (ids as { id: number }[]).map((r) => `legacy-${table}-${r.id}`);
      expect(calls.size).toBe(total);
      expect([...calls.keys()].sort()).toEqual(expected.sort());
      expect([...calls.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await broker.close();
      await legacy.db.query(`DROP TABLE \`${table}\``);
    }
  }, 300_000);

  it('reports invalid rows and leaves them in the legacy table; --dry-run publishes and records nothing', async () => {
    const table = await legacyTable([
      email(1),
      ['send_email', 'not json {'],
      ['send_email', JSON.stringify({ to: 'not an address', subject: 'x', body: 'y' })],
      ['mystery_job', '{}'],
      email(2),
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'pq-migrate-'));
    const env = { SQLITE_PATH: join(dir, 'target.db') };
    const args = ['migrate', '--from', `${MYSQL_URL}/${table}`, '--to', 'sqlite', '--json'];

    const dry = cli([...args, '--dry-run'], env);
    expect((await dry.exit).code, dry.stderr).toBe(2);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dryRun: true,
      read: 5,
      published: 2,
      invalid: 3,
      reconciled: true,
    });
    expect(await recorded(table).catch(() => 0)).toBe(0);

    const real = cli(args, env);
    expect((await real.exit).code, real.stderr).toBe(2);
    const summary = JSON.parse(real.stdout);
    expect(summary).toMatchObject({ read: 5, published: 2, alreadyMoved: 0, invalid: 3, reconciled: true });
    const reasons = Object.fromEntries(
      summary.invalidRows.map((r: { rowId: string; reason: string }) => [r.rowId, r.reason]),
    );
    expect(reasons['2']).toMatch(/^payload is not JSON/);
    expect(reasons['3']).toMatch(/^invalid send_email payload: to/);
    expect(reasons['4']).toMatch(/^unknown job type "mystery_job"/);
    const [left] = await legacy.db.query(`SELECT COUNT(*) AS n FROM \`${table}\``);
    expect(Number((left as { n: string }[])[0]!.n)).toBe(5);

    const broker = await createBrokerFromEnv({ ...env, BROKER: 'sqlite' });
    try {
      expect((await broker.stats('email')).ready).toBe(2);
    } finally {
      await broker.close();
      await legacy.db.query(`DROP TABLE \`${table}\``);
    }
  }, 60_000);
});
