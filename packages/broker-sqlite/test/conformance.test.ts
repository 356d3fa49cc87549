import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteQueueLimits, createSqliteStateStore, drivers } from '@polyqueue/broker-sqlite';
import { createEnvelope } from '@polyqueue/core';
import { connectDriver, runConformanceSuite, runStateStoreSuite } from '@polyqueue/testkit';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { testBroker } from './test-broker';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sqlite-'));
const path = join(dir, 'queue.db');

const env = { SQLITE_PATH: path, SQLITE_LEASE_MS: '1500' };

runConformanceSuite({
  broker: 'sqlite',
  createBroker: () => connectDriver(drivers.sqlite, env),
  driverModule: new URL('../src/index.ts', import.meta.url).href,
  env,
  leaseMs: 1_500,
  serverHint: `the SQLite file ${path}`,
  // The limit scenarios keep their tokens and slots in a state file, as STATE_URL=sqlite: does.
  createLimits: () => createSqliteQueueLimits(join(dir, 'limits-state.db')),
  // A producer in another language: a plain INSERT with the body as the envelope column.
  publishRaw: async (queue, body) => {
    const db = new Database(path);
    db.pragma('busy_timeout = 10000');
    db.prepare(
      `INSERT INTO "polyqueue_${queue}" (job_type, payload, envelope) VALUES ('raw', 'null', ?)`,
    ).run(body);
    db.close();
  },
});

runStateStoreSuite('sqlite', () => createSqliteStateStore(join(dir, 'state.db')));

const openBroker = () => testBroker(path);

describe('sqlite queue specifics', () => {
  it('adds no job whose id the queue already holds', async () => {
    const broker = openBroker();
    try {
      const envelope = createEnvelope('test_job', { n: 1 });
      await broker.publish('dedupe', [{ envelope }]);
      await broker.publish('dedupe', [{ envelope }, { envelope: createEnvelope('test_job', { n: 2 }) }]);
      expect(await broker.stats('dedupe')).toEqual({ ready: 2, inFlight: 0, delayed: 0, dead: 0 });
    } finally {
      await broker.close();
    }
  });

  it('takes a job written by plain SQL, as the foreign {type, payload} shape', async () => {
    const broker = openBroker();
    try {
      await broker.stats('plainsql'); // creates the table
      const db = new Database(path);
      db.prepare(
        `INSERT INTO polyqueue_plainsql (job_type, payload) VALUES ('send_email', '{"to":"a@example.com"}')`,
      ).run();
      db.close();
      const controller = new AbortController();
      let body = '';
      let messageId = '';
      await broker.consume(
        'plainsql',
        async (d) => {
          body = d.body;
          messageId = d.messageId;
          await d.ack();
          controller.abort();
        },
        { concurrency: 1, signal: controller.signal },
      );
      expect(JSON.parse(body)).toEqual({ type: 'send_email', payload: { to: 'a@example.com' } });
      expect(messageId).toMatch(/^polyqueue_plainsql-\d+$/);
    } finally {
      await broker.close();
    }
  });
});
