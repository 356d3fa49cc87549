/**
 * `polyqueue migrate --follow` while a legacy producer keeps writing: the producer is a separate
 * process INSERTing into a Q4M-style table in the local MariaDB (with rolled-back inserts and
 * a transaction that commits a lower id late); the CLI follows it, is SIGKILLed twice (once in
 * the backlog, once while following) and restarted, is stopped with SIGTERM, and the last
 * drain runs with --until-empty after the producer stops. Every row must be exactly one job at
 * the target: on the embedded sqlite broker and on redis-streams.
 *
 * Nothing sleeps: the test waits for the processes' own output lines, their exits and the
 * worker runtime's outcome events, each with a timeout.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import type { Broker } from '@polyqueue/core';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { killAll, migrate, published, start } from './cli-process';
import { drainThroughWorker, legacyDb, MYSQL_URL } from './legacy-db';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PRODUCER = fileURLToPath(new URL('./fixtures/legacy-producer.mjs', import.meta.url));
const BATCH = 50;
const BACKLOG = 1_500;

const legacy = legacyDb(killAll);

/** The backlog: `rows` emails in a new legacy table. */
function legacyTable(rows: number): Promise<string> {
  return legacy.legacyTable(
    'legacy_follow',
    Array.from({ length: rows }, (_, i): [string, string] => [
      'send_email',
      JSON.stringify({ to: `old${i}@example.com`, subject: `Old ${i}`, body: 'from the backlog' }),
    ]),
  );
}

/** Runs every message of the queue through the worker runtime; handler calls per job id. */
async function drain(
  broker: Broker,
  messages: number,
): Promise<{ calls: Map<string, number>; duplicates: number }> {
  const { calls, settled, duplicates } = await drainThroughWorker(broker, 'email', messages, 60_000);
  expect(
    settled,
    `${settled} of ${messages} messages settled through the worker runtime within 60 s (a server restarted without persistence loses them)`,
  ).toBe(messages);
  return { calls, duplicates };
}

interface Target {
  name: string;
  env: Record<string, string>;
  /** Messages the target holds for queue email (copies included). */
  held(): Promise<number>;
  /** Whether the target refuses a job id it already holds (then no copy may exist). */
  refusesKnownIds: boolean;
  cleanup(): Promise<void>;
}

/**
 * The scenario, for one target: backlog + live producer, follow (SIGKILL in the backlog),
 * follow (SIGKILL while following), follow (scrape metrics, SIGTERM), stop the producer,
 * --until-empty; then every row of the table is one job at the target, run once by a worker.
 */
async function followScenario(target: Target): Promise<void> {
  const table = await legacyTable(BACKLOG);
  const source = `${MYSQL_URL}/${table}`;
  const args = [
    '--from',
    source,
    '--to',
    target.name,
    '--batch',
    String(BATCH),
    '--chunk',
    '200',
    '--poll',
    '50',
    '--gap-wait',
    '3000',
    '--json',
  ];
  const producer = start([PRODUCER, MYSQL_URL, table], {});
  try {
    await producer.line((l) => l.startsWith('inserted'), 'from the producer');

    // Run 1: SIGKILLed in the backlog.
    const first = migrate(['--follow', ...args], target.env);
    await first.line((l) => published(l) >= 500, 'with 500 published');
    first.child.kill('SIGKILL');
    expect((await first.exit).signal).toBe('SIGKILL');

    // Run 2: SIGKILLed while following (after it caught up and moved a live batch).
    const second = migrate(['--follow', ...args], target.env);
    const caughtUp = await second.line((l) => l.endsWith(', following'), 'caught up');
    await second.line(
      (l) => l.endsWith(', following') && published(l) > published(caughtUp),
      'moving live rows while following',
    );
    second.child.kill('SIGKILL');
    expect((await second.exit).signal).toBe('SIGKILL');

    // Run 3: following with metrics; stopped with SIGTERM after the producer stops.
    const third = migrate(['--follow', '--metrics-port', '0', ...args], target.env);
    const metricsLine = await third.line((l) => l.startsWith('metrics on '), 'naming the metrics port');
    const following = await third.line((l) => l.endsWith(', following'), 'caught up');
    await third.line(
      (l) => l.endsWith(', following') && published(l) > published(following),
      'moving live rows while following',
    );
    const metrics = await (await fetch(metricsLine.slice('metrics on '.length))).text();
    const sample = (name: string) =>
      Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
    expect(sample('polyqueue_migrate_caught_up')).toBe(1);
    expect(sample('polyqueue_migrate_backlog_rows')).toBeGreaterThanOrEqual(0);
    expect(sample('polyqueue_migrate_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(sample('polyqueue_migrate_lag_seconds')).toBeLessThan(30);
    expect(metrics).toMatch(/^polyqueue_migrate_rows_total\{[^}]*outcome="published"[^}]*\} [1-9]/m);

    producer.child.kill('SIGTERM');
    expect((await producer.exit).code, producer.stderr).toBe(0);
    const inserted = Number(/done inserted=(\d+)/.exec(producer.stdout)?.[1]);
    expect(inserted, 'the producer wrote while the migration ran').toBeGreaterThan(100);

    third.child.kill('SIGTERM');
    expect((await third.exit).code, third.stderr).toBe(0);
    const stopped = JSON.parse(third.stdout);
    expect(stopped).toMatchObject({ mode: 'follow', stoppedBy: 'signal', reconciled: true, invalid: 0 });

    // Run 4: the last drain.
    const last = migrate(['--until-empty', ...args], target.env);
    expect((await last.exit).code, last.stderr).toBe(0);
    const summary = JSON.parse(last.stdout);
    const [[{ n }]] = (await legacy.db.query(`SELECT COUNT(*) AS n FROM \`${table}\``)) as unknown as [
      [{ n: string }],
    ];
    const rows = Number(n);
    expect(rows).toBe(BACKLOG + inserted);
    expect(summary).toMatchObject({
      mode: 'until-empty',
      stoppedBy: 'empty',
      read: rows,
      invalid: 0,
      unmoved: 0,
      recordedMoved: rows,
      reconciled: true,
    });
    expect(summary.read).toBe(summary.published + summary.alreadyMoved + summary.invalid);
    console.log(
      `[${target.name}] ${rows} rows (${BACKLOG} backlog + ${inserted} live); last drain: read ${summary.read} = published ${summary.published} + already moved ${summary.alreadyMoved} + invalid ${summary.invalid}; recorded ${summary.recordedMoved}, unmoved ${summary.unmoved}`,
    );

    // The target: every row's job id, each run exactly once by the worker runtime.
    const broker = await createBrokerFromEnv({ ...target.env, BROKER: target.name });
    try {
      const held = await target.held();
      if (target.refusesKnownIds) expect(held).toBe(rows);
      // Copies come only from a batch published but not yet recorded when a run was killed.
      expect(held - rows).toBeGreaterThanOrEqual(0);
      expect(held - rows).toBeLessThanOrEqual(2 * BATCH);
      const { calls, duplicates } = await drain(broker, held);
      const [ids] = await legacy.db.query(`SELECT id FROM \`${table}\` ORDER BY id`);
      const expected = (ids as { id: string }[]).map((r) => `legacy-${table}-${r.id}`).sort();
      expect([...calls.keys()].sort()).toEqual(expected);
      expect([...calls.values()].every((count) => count === 1)).toBe(true);
      expect(duplicates).toBe(held - rows);
      console.log(
        `[${target.name}] target held ${held} messages for ${rows} rows; handlers ran ${calls.size} times, ${duplicates} copies skipped by the idempotency store`,
      );
    } finally {
      await broker.close();
    }
  } finally {
    if (producer.child.exitCode === null) producer.child.kill('SIGKILL');
    await legacy.db.query(`DROP TABLE IF EXISTS \`${table}\``);
    await legacy.db
      .query('DELETE FROM polyqueue_migrations WHERE source = ?', [`test.${table}`])
      .catch(() => {});
    await target.cleanup();
  }
}

describe('polyqueue migrate --follow while a producer keeps writing', () => {
  it('into sqlite: two SIGKILLs, a SIGTERM and --until-empty leave every row exactly one job', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pq-follow-'));
    await followScenario({
      name: 'sqlite',
      env: { SQLITE_PATH: join(dir, 'target.db'), SQLITE_SYNCHRONOUS: 'NORMAL' },
      // The queue table itself: what the sqlite queue holds, read without the broker.
      held: async () => {
        const sqlite = new Database(join(dir, 'target.db'), { readonly: true });
        try {
          return (sqlite.prepare('SELECT COUNT(*) AS n FROM polyqueue_email').get() as { n: number }).n;
        } finally {
          sqlite.close();
        }
      },
      refusesKnownIds: true,
      cleanup: async () => {},
    });
  }, 90_000);

  it('into redis-streams: two SIGKILLs, a SIGTERM and --until-empty leave every row one job id, run once', async () => {
    const prefix = `pqfollow${Math.random().toString(36).slice(2, 8)}`;
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    try {
      await followScenario({
        name: 'redis-streams',
        env: { REDIS_URL, POLYQUEUE_PREFIX: prefix },
        held: async () => redis.xlen(`${prefix}:email`),
        refusesKnownIds: false,
        cleanup: async () => {
          const keys = [...(await redis.keys(`${prefix}:*`)), ...(await redis.keys(`{${prefix}:*`))];
          if (keys.length > 0) await redis.del(...keys);
        },
      });
    } finally {
      redis.disconnect();
    }
  }, 90_000);
});
