/** The local MariaDB the tests use, and how to restart it (the conformance suite's restart scenario). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';

const run = promisify(execFile);

export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

export const SERVER_HINT = `MariaDB/MySQL at ${MYSQL_URL} (start: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; or set MYSQL_URL)`;

/** One connection for a test's own SQL (raw producer inserts, inspecting tables). */
export async function connect(): Promise<mysql.Connection> {
  try {
    return await mysql.createConnection({ uri: MYSQL_URL, supportBigNumbers: true, bigNumberStrings: true });
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
}

async function accepts(): Promise<boolean> {
  try {
    const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 1_000 });
    await c.end();
    return true;
  } catch {
    return false;
  }
}

async function running(): Promise<boolean> {
  try {
    await run('pidof', ['mariadbd']);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Stops the local mariadbd, waits for it to exit, starts it again, resolves when it accepts connections. */
export async function restartMariadb(): Promise<void> {
  await run('mariadb-admin', ['-uroot', '-h127.0.0.1', 'shutdown']).catch(() => {});
  await until(async () => !(await running()), 'mariadbd to exit');
  await startMariadb();
}

export async function startMariadb(): Promise<void> {
  await run('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd']);
  await until(accepts, `${MYSQL_URL} to accept connections`);
}
