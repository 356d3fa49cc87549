/**
 * `polyqueue migrate` options, end to end against the local MariaDB and the sqlite broker:
 * a follower waits for an id whose insert is still open and gives up on a rolled-back one
 * (--gap-wait); --map and --transform reshape legacy rows; bad options fail with a message
 * naming what was wrong.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import type { Broker } from '@polyqueue/core';
import mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { killAll, migrate, published } from './cli-process';
import { legacyDb, MYSQL_URL } from './legacy-db';

const legacy = legacyDb(killAll);
const legacyTable = (rows: [string, string][]) => legacy.legacyTable('legacy_opt', rows);

const email = (to: string): [string, string] => [
  'send_email',
  JSON.stringify({ to, subject: 'Hi', body: 'from the legacy queue' }),
];

/** The bodies of `count` messages of a queue, consumed and acked. */
async function bodies(broker: Broker, queue: string, count: number): Promise<Record<string, unknown>[]> {
  const got: Record<string, unknown>[] = [];
  const controller = new AbortController();
  let done!: () => void;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const consuming = broker.consume(
    queue,
    async (delivery) => {
      got.push(JSON.parse(delivery.body));
      await delivery.ack();
      if (got.length === count) done();
    },
    { concurrency: 1, signal: controller.signal },
  );
  const timer = setTimeout(done, 15_000);
  await all;
  clearTimeout(timer);
  controller.abort();
  await consuming;
  expect(got).toHaveLength(count);
  return got;
}

describe('polyqueue migrate --follow and gaps', () => {
  it('moves a row whose insert committed after higher ids, and gives up on a rolled-back id after --gap-wait', async () => {
    const table = await legacyTable([email('a@example.com'), email('b@example.com'), email('c@example.com')]);
    const dir = mkdtempSync(join(tmpdir(), 'pq-gaps-'));
    const env = { SQLITE_PATH: join(dir, 'target.db') };
    const insert = `INSERT INTO \`${table}\` (job_type, payload) VALUES (?, ?)`;
    const follower = migrate(
      [
        '--from',
        `${MYSQL_URL}/${table}`,
        '--to',
        'sqlite',
        '--follow',
        '--poll',
        '50',
        '--gap-wait',
        '1500',
        '--json',
      ],
      env,
    );
    const open = await mysql.createConnection({ uri: MYSQL_URL });
    try {
      await follower.line((l) => published(l) === 3 && l.endsWith(', following'), 'with the backlog moved');
      // id 4: inserted, not committed. id 5: committed. id 6: rolled back. id 7: committed.
      await open.beginTransaction();
      await open.query(insert, email('late@example.com'));
      await legacy.db.query(insert, email('d@example.com'));
      await legacy.db.beginTransaction();
      await legacy.db.query(insert, email('never@example.com'));
      await legacy.db.rollback();
      await legacy.db.query(insert, email('e@example.com'));
      await follower.line((l) => published(l) === 5 && / gaps 2,/.test(l), 'with ids 4 and 6 waited for');
      await open.commit();
      await follower.line((l) => published(l) === 6, 'with the late row 4 moved');
      await follower.line((l) => published(l) === 6 && / gaps 0,/.test(l), 'giving up on id 6');
      follower.child.kill('SIGTERM');
      expect((await follower.exit).code, follower.stderr).toBe(0);
      expect(JSON.parse(follower.stdout)).toMatchObject({
        stoppedBy: 'signal',
        read: 6,
        published: 6,
        gapsExpired: 1,
        unmoved: 0,
        reconciled: true,
      });
    } finally {
      await open.end();
    }
    const broker = await createBrokerFromEnv({ ...env, BROKER: 'sqlite' });
    try {
      const got = await bodies(broker, 'email', 6);
      expect(got.map((b) => b.id).sort()).toEqual(
        [1, 2, 3, 4, 5, 7].map((id) => `legacy-${table}-${id}`).sort(),
      );
    } finally {
      await broker.close();
    }
  }, 60_000);
});

describe('polyqueue migrate --map and --transform', () => {
  it('renames legacy job types, reshapes payloads (even non-JSON ones), and reports rows the transform refuses', async () => {
    const table = await legacyTable([
      ['resize', JSON.stringify({ file: 'photos/a.jpg', w: 128 })],
      ['send_email', 'a:2:{s:2:"to";s:13:"p@example.com";s:7:"subject";s:3:"PHP";}'],
      ['resize', JSON.stringify({ w: 64 })],
      email('q@example.com'),
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'pq-map-'));
    const transform = join(dir, 'transform.mjs');
    writeFileSync(
      transform,
      `export default function transform({ legacyType, type, payload, payloadText }) {
  if (legacyType === 'resize') {
    if (!payload.file) throw new Error('resize row without a file');
    return { type, payload: { path: payload.file, variants: [{ name: 'thumb', width: payload.w }] } };
  }
  if (payload === undefined) {
    // PHP serialize() of an array: pick the strings out.
    const fields = Object.fromEntries([...payloadText.matchAll(/s:\\d+:"([^"]*)";s:\\d+:"([^"]*)";/g)].map((m) => [m[1], m[2]]));
    return { type, payload: fields };
  }
  return { type, payload };
}
`,
    );
    const env = { SQLITE_PATH: join(dir, 'target.db') };
    const run = migrate(
      [
        '--from',
        `${MYSQL_URL}/${table}`,
        '--to',
        'sqlite',
        '--map',
        'resize=process_image',
        '--transform',
        transform,
        '--json',
      ],
      env,
    );
    expect((await run.exit).code, run.stderr).toBe(2);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ read: 4, published: 3, invalid: 1, reconciled: true });
    expect(summary.invalidRows).toEqual([
      { rowId: '3', reason: 'transform failed: resize row without a file' },
    ]);

    const broker = await createBrokerFromEnv({ ...env, BROKER: 'sqlite' });
    try {
      const [image] = await bodies(broker, 'image', 1);
      expect(image).toMatchObject({
        id: `legacy-${table}-1`,
        type: 'process_image',
        payload: { path: 'photos/a.jpg', variants: [{ name: 'thumb', width: 128 }] },
      });
      const emails = await bodies(broker, 'email', 2);
      expect(emails.map((e) => e.payload)).toEqual(
        expect.arrayContaining([
          { to: 'p@example.com', subject: 'PHP' },
          { to: 'q@example.com', subject: 'Hi', body: 'from the legacy queue' },
        ]),
      );
    } finally {
      await broker.close();
    }
  }, 60_000);

  it.each([
    [['--map', 'resize'], /--map: expected legacy_type=job_type/],
    [
      ['--map', 'resize=bogus'],
      /--map resize=bogus: unknown job type "bogus"; valid: send_email, process_image/,
    ],
    [['--transform', './no-such-module.mjs'], /--transform: cannot import \.\/no-such-module\.mjs/],
    [['--follow', '--dry-run'], /--dry-run reads the table once/],
    [['--follow', '--poll', '0'], /--poll must be a positive whole number \(got "0"\)/],
    [['--follow', '--gap-wait', 'soon'], /--gap-wait must be a whole number of milliseconds/],
    [['--follow', '--metrics-port', '70000'], /--metrics-port must be a port number/],
  ])(
    'refuses %j with a clear message',
    async (extra, message) => {
      const run = migrate(['--from', `${MYSQL_URL}/legacy_unused`, '--to', 'sqlite', ...extra], {});
      expect((await run.exit).code).toBe(1);
      expect(run.stderr).toMatch(message);
    },
    30_000,
  );
});
