import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteStateStore } from '@polyqueue/broker-sqlite';
import { runConformanceSuite, runStateStoreSuite } from '@polyqueue/testkit';
import Database from 'better-sqlite3';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sqlite-'));
const path = join(dir, 'queue.db');

runConformanceSuite({
  broker: 'sqlite',
  env: { SQLITE_PATH: path, SQLITE_LEASE_MS: '1500' },
  leaseMs: 1_500,
  serverHint: `the SQLite file ${path}`,
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
