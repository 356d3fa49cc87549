/**
 * mysql: the shared local MariaDB (database `test`); restart = `mariadb-admin shutdown`, then
 * start-stop-daemon (as the conformance suite does). Tables are dropped at the end.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { BrokerContext, BrokerServer } from './types';
import { until } from './wait';

const run = promisify(execFile);

/** start-stop-daemon's arguments that start mariadbd as the machine does (no-op while it runs). */
const START_SERVER = ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd'];

/** True when the command exits 0 (within timeoutMs). */
async function succeeds(command: string, args: string[], timeoutMs?: number): Promise<boolean> {
  try {
    await run(command, args, timeoutMs ? { timeout: timeoutMs } : {});
    return true;
  } catch {
    return false;
  }
}

export async function mysql(ctx: BrokerContext): Promise<BrokerServer> {
  const client = (sql: string) =>
    run('mariadb', ['-uroot', '-h127.0.0.1', '-P3306', '-N', '-B', 'test', '-e', sql], { timeout: 30_000 });
  const accepts = () =>
    succeeds('mariadb-admin', ['-uroot', '-h127.0.0.1', '--connect-timeout=1', 'ping'], 5_000);
  const running = () => succeeds('pidof', ['mariadbd']);
  const startServer = async () => {
    await run('start-stop-daemon', START_SERVER);
    await until(accepts, 'MariaDB to accept connections');
  };
  if (!(await accepts())) throw new Error('MariaDB is not answering on 127.0.0.1:3306');
  return {
    name: 'mysql',
    atLeastOnce: true,
    leaseMs: ctx.leaseMs,
    leaseIs: 'MYSQL_LEASE_MS',
    env: {
      BROKER: 'mysql',
      MYSQL_URL: 'mysql://root@127.0.0.1:3306/test',
      POLYQUEUE_PREFIX: ctx.prefix,
      MYSQL_LEASE_MS: String(ctx.leaseMs),
    },
    restart: async () => {
      try {
        await run('mariadb-admin', ['-uroot', '-h127.0.0.1', 'shutdown'], { timeout: 60_000 }).catch(
          () => {},
        );
        await until(async () => !(await running()), 'mariadbd to exit');
      } finally {
        await startServer();
      }
    },
    notes: ['shared MariaDB, mariadb-admin shutdown + start'],
    teardown: async () => {
      if (!(await accepts())) await startServer();
      const { stdout } = await client(`SHOW TABLES LIKE '${ctx.prefix}\\_%'`);
      const tables = stdout
        .split('\n')
        .map((line) => line.trim())
        .filter((t) => /^[A-Za-z0-9_]+$/.test(t));
      if (tables.length > 0) await client(`DROP TABLE IF EXISTS ${tables.map((t) => `\`${t}\``).join(', ')}`);
    },
    emergencyStop: () => {
      try {
        execFileSync('start-stop-daemon', START_SERVER, { timeout: 10_000, stdio: 'ignore' });
      } catch {
        // reported by the next run's precheck
      }
    },
  };
}
