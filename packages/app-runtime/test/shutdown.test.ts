/**
 * Every service exits 0 soon after SIGTERM, on every broker: the API and both workers run as
 * real processes, started with the root's `npm run start:<service>`, against the real servers;
 * once ready, npm is sent SIGTERM (what an operator's Ctrl-C or a process manager sends), and
 * npm and the service under it must both be gone, npm with 0, within DRAIN_TIMEOUT_MS + 5 s.
 * Each test has its own prefix, files and ports.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from '@polyqueue/testkit';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const DRAIN_TIMEOUT_MS = 2_000;
/** What the requirement allows after the drain: closing connections, flushing logs. */
const GRACE_MS = 5_000;
/** Starting a service (tsx, the broker client, a Kafka group join) on a busy CI machine. */
const READY_TIMEOUT_MS = 60_000;

const SERVICES = {
  api: { entry: 'apps/api/src/main.ts', ready: /^listening on / },
  'email-worker': { entry: 'apps/email-worker/src/main.ts', ready: /^worker ready$/ },
  'image-worker': { entry: 'apps/image-worker/src/main.ts', ready: /^worker ready$/ },
} as const;
type Service = keyof typeof SERVICES;

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** Each broker's connection variables (the names its config.ts reads). */
const BROKER_ENV: Record<string, Record<string, string>> = {
  sqlite: {},
  memory: {},
  'redis-list': { REDIS_URL },
  'redis-reliable': { REDIS_URL },
  'redis-streams': { REDIS_URL },
  rabbitmq: { AMQP_URL: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672' },
  kafka: { KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092' },
  sqs: {
    SQS_ENDPOINT: process.env.SQS_ENDPOINT ?? 'http://127.0.0.1:9324',
    AWS_REGION: process.env.AWS_REGION ?? 'elasticmq',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'x',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'x',
  },
  mysql: { MYSQL_URL },
};

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-shutdown-'));
const children = new Set<ChildProcess>();
let counter = 0;

afterAll(async () => {
  // A test that failed half-way must not leave a service running.
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pid of servicePids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  // Where it is cheap, leave the shared servers as found: this run's Redis keys and MySQL tables
  // (RabbitMQ queues, Kafka topics and SQS queues of the run's prefixes stay, empty).
  const run = `pqstop${process.pid}x`;
  const deleteKeys = "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0";
  await redisCommand('EVAL', deleteKeys, '0', `*${run}*`).catch(() => {});
  const drops = await mysqlQuery(
    `SELECT CONCAT('DROP TABLE \`', table_name, '\`;') FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE '${run}%'`,
  ).catch(() => '');
  if (drops) await mysqlQuery(drops.split('\n').join(' ')).catch(() => {});
}, 30_000);

/**
 * Runs one Redis command over a plain socket (RESP): this package has no Redis client, and
 * the test needs only to leave a key behind and delete it.
 */
async function redisCommand(...args: string[]): Promise<string> {
  const url = new URL(REDIS_URL);
  const socket = connect(Number(url.port || 6379), url.hostname);
  const request = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('data', (reply: Buffer) => {
      socket.end();
      const text = reply.toString('utf8');
      if (text.startsWith('-')) reject(new Error(`redis ${args[0]}: ${text.trim()}`));
      else resolve(text);
    });
    socket.write(request);
  });
}

/**
 * A `mysql` client session kept open on stdin, as a second application holding locks would.
 * Statements are written to it one by one; close() ends the session (rolling back).
 */
function mysqlSession(): { run(sql: string): void; close(): Promise<void> } {
  const url = new URL(MYSQL_URL);
  const args = [
    `--host=${url.hostname}`,
    `--port=${url.port || '3306'}`,
    `--user=${decodeURIComponent(url.username) || 'root'}`,
    ...(url.password ? [`--password=${decodeURIComponent(url.password)}`] : []),
    url.pathname.slice(1),
  ];
  const child = spawn('mysql', args, { stdio: ['pipe', 'ignore', 'inherit'] });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (error) => {
    throw new Error(`the mysql command-line client is needed to hold a lock: ${error.message}`);
  });
  return {
    run: (sql) => child.stdin!.write(`${sql}\n`),
    async close() {
      child.stdin!.end();
      await exited;
      children.delete(child);
    },
  };
}

/** One query through the mysql command-line client; its output without headers. */
async function mysqlQuery(sql: string): Promise<string> {
  const url = new URL(MYSQL_URL);
  const child = spawn(
    'mysql',
    [
      `--host=${url.hostname}`,
      `--port=${url.port || '3306'}`,
      `--user=${decodeURIComponent(url.username) || 'root'}`,
      ...(url.password ? [`--password=${decodeURIComponent(url.password)}`] : []),
      '--batch',
      '--skip-column-names',
      '-e',
      sql,
      url.pathname.slice(1),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`mysql -e ${JSON.stringify(sql)} failed: ${out}`);
  return out.trim();
}

/** Letters and digits only: valid as a prefix on every broker (SQL tables, topics, queues). */
function uniquePrefix(): string {
  counter += 1;
  return `pqstop${process.pid}x${counter}`;
}

interface Running {
  child: ChildProcess;
  /** The first log record whose msg matched the ready pattern. */
  ready: Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything it wrote so far, for failure messages. */
  output(): string;
  /** The service's own pid (npm runs it as a child), from its log records. */
  pid(): number | undefined;
}

/** Service pids read off their log records, so a service orphaned by npm can be killed at the end. */
const servicePids = new Set<number>();

/** `npm run start:<service>` at the repo root, as an operator or a process manager runs it. */
function start(service: Service, env: Record<string, string>): Running {
  const child = spawn('npm', ['run', '--silent', `start:${service}`], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let text = '';
  let servicePid: number | undefined;
  let readyResolve!: (record: Record<string, unknown>) => void;
  let readyReject!: (error: Error) => void;
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    readyResolve = resolve;
    readyReject = reject;
  });
  ready.catch(() => {});
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        if (typeof record.pid === 'number') {
          servicePid = record.pid;
          servicePids.add(record.pid);
        }
        if (typeof record.msg === 'string' && SERVICES[service].ready.test(record.msg)) readyResolve(record);
      } catch {
        // not a log record
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      readyReject(new Error(`${service} exited (${code ?? signal}) before it was ready`));
      resolve({ code, signal });
    }),
  );
  const timer = setTimeout(
    () => readyReject(new Error(`${service} not ready after ${READY_TIMEOUT_MS} ms`)),
    READY_TIMEOUT_MS,
  );
  ready.then(
    () => clearTimeout(timer),
    () => clearTimeout(timer),
  );
  return { child, ready, exited, output: () => text.slice(-4_000), pid: () => servicePid };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends SIGTERM and resolves with how long the process took to exit, failing past the bound. */
async function stopWithin(running: Running, what: string): Promise<{ code: number | null; ms: number }> {
  const bound = DRAIN_TIMEOUT_MS + GRACE_MS;
  const sent = performance.now();
  running.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), bound);
  });
  const result = await Promise.race([running.exited, late]);
  clearTimeout(timer);
  if (result === 'late') {
    running.child.kill('SIGKILL');
    throw new Error(`${what} still running ${bound} ms after SIGTERM; its output:\n${running.output()}`);
  }
  if (result.code !== 0)
    throw new Error(`${what} exited with ${result.code ?? result.signal}; its output:\n${running.output()}`);
  // npm exiting is not enough: the service itself must be gone, not orphaned and still running.
  const pid = running.pid();
  if (pid !== undefined) {
    const left = Math.max(0, bound - (performance.now() - sent));
    await eventually(
      async () => isAlive(pid),
      (alive) => !alive,
      `${what}: its node process ${pid} to exit after npm did (orphaned?); its output:\n${running.output()}`,
      left,
      20,
    );
  }
  return { code: result.code, ms: Math.round(performance.now() - sent) };
}

/** The variables every service gets: its broker's, its own prefix, files, and free ports. */
function serviceEnv(
  broker: string,
  prefix: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const files = join(dir, prefix);
  return {
    BROKER: broker,
    ...BROKER_ENV[broker],
    POLYQUEUE_PREFIX: prefix,
    SQLITE_PATH: join(files, 'queue.db'),
    STATE_URL: `sqlite:${join(files, 'state.db')}`,
    STORAGE_ROOT: join(files, 'storage'),
    OUTBOX_DIR: join(files, 'outbox'),
    DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
    PORT: '0',
    HOST: '127.0.0.1',
    METRICS_PORT: '0',
    ...extra,
  };
}

describe('every service exits 0 within DRAIN_TIMEOUT_MS + 5 s of SIGTERM', () => {
  it.concurrent.each(Object.keys(BROKER_ENV))(
    'BROKER=%s: api, email-worker and image-worker',
    async (broker) => {
      const prefix = uniquePrefix();
      const env = serviceEnv(broker, prefix);
      const running = (Object.keys(SERVICES) as Service[]).map((service) => ({
        service,
        process: start(service, env),
      }));
      await Promise.all(
        running.map(({ service, process: p }) =>
          p.ready.catch((error: Error) => {
            throw new Error(`${service} on ${broker}: ${error.message}; its output:\n${p.output()}`);
          }),
        ),
      );
      const stopped = await Promise.all(
        running.map(({ service, process: p }) => stopWithin(p, `${service} on ${broker}`)),
      );
      for (const { code } of stopped) expect(code).toBe(0);
    },
    READY_TIMEOUT_MS + DRAIN_TIMEOUT_MS + GRACE_MS + 10_000,
  );

  it.concurrent(
    'the API on redis-reliable with the MySQL state store, after a publish error (issue 13)',
    async () => {
      const prefix = uniquePrefix();
      // A publish error: the queue's key is a stream (left by redis-streams), redis-reliable needs a list.
      const key = `${prefix}:email`;
      try {
        await redisCommand('XADD', key, '*', 'envelope', '{}');
        const api = start('api', serviceEnv('redis-reliable', prefix, { STATE_URL: MYSQL_URL, REDIS_URL }));
        const listening = await api.ready.catch((error: Error) => {
          throw new Error(`${error.message}; its output:\n${api.output()}`);
        });
        const port = listening.port as number;
        // Start-up and /readyz name the key before any POST (issue 13: only WRONGTYPE per POST).
        const named = new RegExp(`key ${key} is a stream, redis-reliable needs a list: .*POLYQUEUE_PREFIX`);
        await eventually(
          async () => api.output(),
          (output) => /broker not ready: key /.test(output),
          'the start-up log line naming the key',
        );
        expect(api.output()).toMatch(named);
        const readyz = await fetch(`http://127.0.0.1:${port}/readyz`);
        expect(readyz.status).toBe(503);
        expect(((await readyz.json()) as { checks: { broker: string } }).checks.broker).toMatch(named);
        const response = await fetch(`http://127.0.0.1:${port}/v1/emails`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `${prefix}-1` },
          body: JSON.stringify({ to: 'a@example.com', subject: 'Hi', body: 'Hello' }),
        });
        expect(response.status).toBe(503);
        expect(((await response.json()) as { detail: string }).detail).toMatch(named);
        const { code } = await stopWithin(api, 'the API after a publish error');
        expect(code).toBe(0);
      } finally {
        await redisCommand('DEL', key);
      }
    },
    READY_TIMEOUT_MS + DRAIN_TIMEOUT_MS + GRACE_MS + 10_000,
  );

  it.concurrent(
    'the email worker while a send hangs on an SMTP server that never answers',
    async () => {
      // The handler does not stop when the drain times out (an SMTP socket waits up to 60 s):
      // the process must still exit within the bound, leaving the job to come back.
      const prefix = uniquePrefix();
      const sockets = new Set<Socket>();
      const smtp = createNetServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
      });
      smtp.listen(0, '127.0.0.1');
      await once(smtp, 'listening');
      const connected = once(smtp, 'connection');
      const env = serviceEnv('sqlite', prefix, {
        SMTP_URL: `smtp://127.0.0.1:${(smtp.address() as AddressInfo).port}`,
      });
      const api = start('api', env);
      const worker = start('email-worker', env);
      try {
        const [listening] = await Promise.all([api.ready, worker.ready]);
        const response = await fetch(`http://127.0.0.1:${listening.port as number}/v1/emails`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ to: 'a@example.com', subject: 'Hi', body: 'Hello' }),
        });
        expect(response.status).toBe(202);
        await connected; // the worker is sending: its handler now waits on the silent server
        const [stoppedWorker, stoppedApi] = await Promise.all([
          stopWithin(worker, 'the email worker with a send in flight'),
          stopWithin(api, 'the API'),
        ]);
        expect(stoppedWorker.code).toBe(0);
        expect(stoppedApi.code).toBe(0);
      } finally {
        for (const socket of sockets) socket.destroy();
        smtp.close();
      }
    },
    READY_TIMEOUT_MS + DRAIN_TIMEOUT_MS + GRACE_MS + 10_000,
  );

  it.concurrent(
    'the API with the MySQL state store, while a state query waits on a lock',
    async () => {
      // mysql2's pool.end() queues its QUIT behind the queries in flight: a request whose
      // INSERT waits on a row lock kept the pool, and so the process, alive until the lock wait
      // timed out (50 s by default).
      const prefix = uniquePrefix();
      const api = start(
        'api',
        serviceEnv('redis-reliable', prefix, { STATE_URL: `${MYSQL_URL}?prefix=${prefix}`, REDIS_URL }),
      );
      const listening = await api.ready.catch((error: Error) => {
        throw new Error(`${error.message}; its output:\n${api.output()}`);
      });
      const table = `${prefix}_jobs`;
      const key = `${prefix}-locked`;
      const locker = mysqlSession();
      try {
        // Another transaction holds the Idempotency-Key's unique index entry, uncommitted.
        locker.run('BEGIN;');
        locker.run(
          `INSERT INTO ${table} (id, type, queue, status, idempotency_key, created_at, updated_at) ` +
            `VALUES ('${prefix}-other', 'send_email', 'email', 'pending', '${key}', NOW(3), NOW(3));`,
        );
        // The row is visible to a reader that does not wait for commits once the INSERT ran.
        await eventually(
          () =>
            mysqlQuery(
              `SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED; SELECT COUNT(*) FROM ${table} WHERE idempotency_key = '${key}'`,
            ),
          (count) => count === '1',
          'the locking transaction to hold the key',
        );
        const request = fetch(`http://127.0.0.1:${listening.port as number}/v1/emails`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({ to: 'a@example.com', subject: 'Hi', body: 'Hello' }),
        }).catch((error: Error) => error);
        // The process list, not INNODB_TRX: InnoDB refreshes that table's snapshot only when it
        // was last read over 100 ms ago, so a poll every 50 ms kept reading a stale one (and
        // the test failed on a machine fast enough to poll that often).
        await eventually(
          () =>
            mysqlQuery(
              `SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND INFO LIKE 'INSERT INTO \`${table}\`%'`,
            ),
          (count) => Number(count) >= 1,
          "the API's INSERT to wait on the lock",
        );
        const { code } = await stopWithin(api, 'the API with a state query waiting on a lock');
        expect(code).toBe(0);
        await request;
      } finally {
        await locker.close();
      }
    },
    READY_TIMEOUT_MS + DRAIN_TIMEOUT_MS + GRACE_MS + 20_000,
  );
});
