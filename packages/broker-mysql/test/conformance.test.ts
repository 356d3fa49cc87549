import { connectDriver, runConformanceSuite } from '@polyqueue/testkit';
import { createMysqlQueueLimits, drivers, queueTableDdl, tableNames } from '../src/index';
import { connect, MYSQL_URL, restartMariadb, SERVER_HINT } from './server';

const LEASE_MS = 2_000;

/**
 * A producer writing SQL, as a PHP or Python service would: `{type, payload}` bodies become
 * job_type + payload columns; anything else goes to the body column unchanged.
 */
async function publishRaw(queue: string, body: string): Promise<void> {
  const connection = await connect();
  try {
    const table = tableNames('polyqueue', queue).queue;
    await connection.query(queueTableDdl(table));
    let foreign: { type?: unknown; payload?: unknown } | undefined;
    try {
      const json = JSON.parse(body);
      if (json && typeof json === 'object' && Object.keys(json).sort().join() === 'payload,type')
        foreign = json;
    } catch {}
    if (foreign && typeof foreign.type === 'string') {
      await connection.query(`INSERT INTO \`${table}\` (job_type, payload) VALUES (?, ?)`, [
        foreign.type,
        JSON.stringify(foreign.payload),
      ]);
    } else {
      await connection.query(`INSERT INTO \`${table}\` (body) VALUES (?)`, [body]);
    }
  } finally {
    await connection.end();
  }
}

const env = {
  MYSQL_URL,
  MYSQL_LEASE_MS: String(LEASE_MS),
  MYSQL_POLL_MIN_MS: '10',
  MYSQL_POLL_MAX_MS: '200',
};

runConformanceSuite({
  broker: 'mysql',
  createBroker: () => connectDriver(drivers.mysql!, env),
  driverModule: new URL('../src/index.ts', import.meta.url).href,
  env,
  serverHint: SERVER_HINT,
  publishRaw,
  restartServer: restartMariadb,
  // InnoDB tables: committed rows survive a shutdown; a lease held then runs out and returns.
  durableAcrossRestart: true,
  leaseMs: LEASE_MS,
  batchSize: 500,
  // The limit scenarios keep their tokens and slots in MySQL, as STATE_URL=mysql:// does.
  createLimits: () => createMysqlQueueLimits(`${MYSQL_URL}?prefix=polyqueue_limitsconf`),
});
