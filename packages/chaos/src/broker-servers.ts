/**
 * The broker behind one chaos run, and how to restart it under load.
 *
 * - redis-list, redis-reliable, redis-streams: a redis-server of the run's own, on a spare port
 *   in the run's temp dir, with `--appendonly yes --appendfsync always` (the pre-started Redis
 *   on 6379 has no persistence: restarting it would lose everything, which says nothing about
 *   the drivers). Restart: SIGTERM, start again on the same AOF.
 * - kafka: a single-node Kafka of the run's own (scripts/services/kafka/kafka.sh with a private
 *   POLYQUEUE_CACHE, ports and data dir; the jars are the cached ones). Restart: stop + start.
 * - sqs: an ElasticMQ of the run's own with ELASTICMQ_PERSIST=1 (H2 file), so a restart keeps the
 *   queues and messages as SQS would. Restart: stop + start.
 * - rabbitmq: the shared local broker; restart = `rabbitmqctl stop_app && start_app` (as the
 *   conformance suite does). Queues have the run's prefix and are deleted at the end.
 * - mysql: the shared local MariaDB (database `test`); restart = `mariadb-admin shutdown`, then
 *   start-stop-daemon (as the conformance suite does). Tables are dropped at the end.
 * - sqlite: embedded, a file in the run's temp dir; there is no server to restart.
 * - redis-reliable, redis-streams with `--redis-cluster`: the shared local Redis Cluster
 *   (scripts/services/redis-cluster/, 3 masters + 3 replicas), the state store on it too; the
 *   restart is a master failover: the master serving the queue's slot is SIGKILLed, its replica
 *   takes over, the killed node rejoins as a replica (redis-cluster.ts).
 *
 * Every wait is bounded; a shared server this run stopped is always started again.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, sleep, spawnTracked } from './processes';
import {
  CLUSTER_HINT,
  checkCluster,
  clusterEpoch,
  deleteKeys,
  emergencyRestart,
  failoverMasterOf,
  localClusterNodes,
  ownerOf,
  restoreCluster,
} from './redis-cluster';

const run = promisify(execFile);

export const BROKERS = [
  'sqlite',
  'redis-list',
  'redis-reliable',
  'redis-streams',
  'rabbitmq',
  'kafka',
  'sqs',
  'mysql',
] as const;
export type BrokerName = (typeof BROKERS)[number];

export interface BrokerContext {
  dir: string;
  prefix: string;
  /** The lease the run asks the broker for (ms). */
  leaseMs: number;
  repoRoot: string;
  say: (line: string) => void;
  /** redis-reliable, redis-streams: on the local Redis Cluster, the restart a master failover. */
  cluster?: boolean;
}

/** What a restart that knows better than "the call returned" says about itself. */
export interface RestartResult {
  /** Date.now() when the broker served the queue again (a failover: the promoted replica). */
  servingAt: number;
  detail: string;
}

export function isRestartResult(value: unknown): value is RestartResult {
  return (
    typeof value === 'object' && value !== null && typeof (value as RestartResult).servingAt === 'number'
  );
}

/** The run's traces in a state store on the broker's own server, to delete at the end. */
export interface RunTraces {
  jobIds: string[];
  idempotencyKeys: string[];
}

export interface BrokerServer {
  name: BrokerName;
  /** False only for redis-list (BLPOP): a job popped by a worker that dies is gone. */
  atLeastOnce: boolean;
  /** How long a dead consumer's job takes to come back, at most (ms): the unit of "recovery". */
  leaseMs: number;
  /** What leaseMs is, for this broker. */
  leaseIs: string;
  /** Variables for the services (BROKER, the URL, prefix, lease). */
  env: Record<string, string>;
  /**
   * Stops and starts the broker; undefined when there is no server to restart (sqlite). May
   * resolve to a RestartResult (isRestartResult) saying when the broker served again.
   */
  restart?: () => Promise<unknown>;
  /** The restart fault's target in the report (default: the broker's name). */
  restartTarget?: string;
  /** STATE_URL the run uses unless --state-url says otherwise (default: a sqlite file). */
  stateUrl?: string;
  notes: string[];
  /** More notes, asked for once the faults and the wait are over (before the report). */
  endNotes?: () => Promise<string[]>;
  /**
   * Stops the run's own server, removes the run's queues/tables, leaves shared servers running;
   * with `traces`, also the run's records in a state store at `stateUrl`.
   */
  teardown(traces?: RunTraces): Promise<void>;
  /** Last resort on exit: synchronous, no waiting. */
  emergencyStop(): void;
}

export async function openBroker(name: BrokerName, ctx: BrokerContext): Promise<BrokerServer> {
  switch (name) {
    case 'sqlite':
      return sqlite(ctx);
    case 'redis-list':
    case 'redis-reliable':
    case 'redis-streams':
      if (ctx.cluster) {
        if (name === 'redis-list') throw new Error('--redis-cluster: redis-reliable or redis-streams');
        return redisCluster(name, ctx);
      }
      return redis(name, ctx);
    case 'rabbitmq':
      return rabbitmq(ctx);
    case 'kafka':
      return kafka(ctx);
    case 'sqs':
      return sqs(ctx);
    case 'mysql':
      return mysql(ctx);
  }
}

function sqlite(ctx: BrokerContext): BrokerServer {
  return {
    name: 'sqlite',
    atLeastOnce: true,
    leaseMs: ctx.leaseMs,
    leaseIs: 'SQLITE_LEASE_MS',
    env: { BROKER: 'sqlite', SQLITE_PATH: join(ctx.dir, 'queue.db'), SQLITE_LEASE_MS: String(ctx.leaseMs) },
    notes: ['embedded file: no broker restart'],
    teardown: async () => {},
    emergencyStop: () => {},
  };
}

/** Resolves when something accepts TCP connections on 127.0.0.1:port (bounded). */
async function untilPortOpen(port: number, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await portOpen(port))) {
    if (Date.now() > deadline) throw new Error(`${what} (127.0.0.1:${port}) not up after ${timeoutMs} ms`);
    await sleep(200);
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function redis(name: BrokerName, ctx: BrokerContext): Promise<BrokerServer> {
  const port = await freePort();
  const dataDir = join(ctx.dir, 'redis');
  mkdirSync(dataDir, { recursive: true });
  let child: ReturnType<typeof spawnTracked> | undefined;
  const start = async () => {
    child = spawnTracked(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dataDir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--logfile',
        join(dataDir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    await untilRedisAnswers(port);
  };
  const stop = async () => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGTERM');
    const timer = setTimeout(() => current.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    name,
    atLeastOnce: name !== 'redis-list',
    leaseMs: ctx.leaseMs,
    leaseIs: 'REDIS_LEASE_MS',
    env: {
      BROKER: name,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      POLYQUEUE_PREFIX: ctx.prefix,
      REDIS_LEASE_MS: String(ctx.leaseMs),
    },
    restart: async () => {
      await stop();
      await start();
    },
    notes: [
      `own redis-server :${port}, AOF appendfsync always`,
      ...(name === 'redis-list' ? ['at-most-once by design (BLPOP)'] : []),
    ],
    teardown: stop,
    emergencyStop: () => child?.kill('SIGKILL'),
  };
}

/** The queue the chaos run's jobs go to (send_email), whose key's slot the failover moves. */
const EMAIL_QUEUE = 'email';
/** The Redis state store's prefix (not POLYQUEUE_PREFIX) and its records' hash tag on a cluster. */
const STATE_PREFIX = 'polyqueue';

async function redisCluster(name: BrokerName, ctx: BrokerContext): Promise<BrokerServer> {
  let nodes: string[];
  try {
    nodes = await localClusterNodes();
  } catch (error) {
    throw new Error(`cannot list the cluster's nodes (${(error as Error).message}). Needs ${CLUSTER_HINT}`);
  }
  await checkCluster(nodes);
  // Every key of the queue shares the main key's hash tag: `<prefix>:email` (docs/brokers/redis.md).
  const queueKey = `${ctx.prefix}:${EMAIL_QUEUE}`;
  const queue = await ownerOf(nodes, queueKey);
  const state = await ownerOf(nodes, `{${STATE_PREFIX}:jobs}`);
  const epochAtStart = await clusterEpoch(nodes);
  let failovers = 0;
  ctx.say(
    `Redis Cluster ${nodes.join(',')}: ${queueKey} is slot ${queue.slot} on ${queue.master.address} (replica ${queue.replicas.map((r) => r.address).join(', ')}); the state store's records on ${state.master.address}`,
  );
  return {
    name,
    atLeastOnce: true,
    leaseMs: ctx.leaseMs,
    leaseIs: 'REDIS_LEASE_MS',
    env: {
      BROKER: name,
      REDIS_CLUSTER_NODES: nodes.join(','),
      POLYQUEUE_PREFIX: ctx.prefix,
      REDIS_LEASE_MS: String(ctx.leaseMs),
    },
    stateUrl: 'redis://',
    restartTarget: `${name} master failover`,
    restart: async () => {
      failovers++;
      const failover = await failoverMasterOf(nodes, queueKey);
      return { servingAt: failover.servingAt, detail: failover.detail };
    },
    notes: [
      `Redis Cluster ${nodes[0]}..${nodes.at(-1)} (scripts/services/redis-cluster: ${nodes.length} nodes, AOF appendfsync everysec, asynchronous replication, no WAIT); the restart is a master failover`,
      `queue key ${queueKey}: slot ${queue.slot}, on ${queue.master.address} at the start; the state store's records ({${STATE_PREFIX}:jobs}) on ${state.master.address}${state.master.id === queue.master.id ? ' (the same master: the failover moves them too)' : ' (another master)'}`,
    ],
    endNotes: async () => {
      const epoch = await clusterEpoch(nodes);
      if (epoch === undefined || epochAtStart === undefined) return [];
      const rise = epoch - epochAtStart;
      return [
        `cluster epoch ${epochAtStart} -> ${epoch} for ${failovers} failover(s) of this run${rise > failovers ? ': more than one per failover (another suite failing masters over meanwhile, or a retried election)' : ''}`,
      ];
    },
    teardown: async (traces) => {
      await restoreCluster().catch((error) => ctx.say(`cluster restore: ${error}`));
      const keys: string[] = [];
      for (const id of traces?.jobIds ?? [])
        keys.push(`{${STATE_PREFIX}:jobs}:job:${id}`, `${STATE_PREFIX}:idem:${id}`);
      for (const key of traces?.idempotencyKeys ?? [])
        keys.push(`{${STATE_PREFIX}:jobs}:job-key:${key}`, `${STATE_PREFIX}:idem:${key}`);
      const deleted = await deleteKeys(nodes, [`${ctx.prefix}:*`, `{${ctx.prefix}:*`], keys);
      ctx.say(`deleted this run's keys on the cluster (${deleted} names)`);
    },
    emergencyStop: emergencyRestart,
  };
}

async function untilRedisAnswers(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping'], {
        timeout: 2_000,
      });
      // LOADING while the AOF is replayed; PONG when it serves commands.
      if (stdout.trim() === 'PONG') return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server :${port} not answering after ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function rabbitmq(ctx: BrokerContext): Promise<BrokerServer> {
  const ctl = (...args: string[]) => run('rabbitmqctl', args, { timeout: 120_000 });
  const ensureRunning = async () => {
    await ctl('start_app');
    await ctl('await_startup');
    await untilPortOpen(5672, 'RabbitMQ');
  };
  if (!(await portOpen(5672)))
    throw new Error('RabbitMQ is not answering on 127.0.0.1:5672 (start: rabbitmq-server -detached)');
  return {
    name: 'rabbitmq',
    atLeastOnce: true,
    // No broker lease: a consumer's unacked messages return as soon as its connection closes (a
    // SIGKILL closes it at once); the AMQP heartbeat bounds it for a silent network. What holds a
    // returned job back is the dead worker's idempotency claim, leased for JOB_LEASE_MS (default
    // 30 s): the run sets it to the run's lease.
    leaseMs: ctx.leaseMs,
    leaseIs: 'JOB_LEASE_MS, the idempotency claim (unacked messages return when the connection closes)',
    env: {
      JOB_LEASE_MS: String(ctx.leaseMs),
      BROKER: 'rabbitmq',
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
      POLYQUEUE_PREFIX: ctx.prefix,
    },
    restart: async () => {
      try {
        await ctl('stop_app');
      } finally {
        await ensureRunning();
      }
    },
    notes: ['shared server, rabbitmqctl stop_app/start_app'],
    teardown: async () => {
      await ensureRunning();
      const { stdout } = await ctl('list_queues', '--quiet', '--no-table-headers', 'name');
      const names = stdout
        .split('\n')
        .map((line) => line.trim())
        .filter((queue) => queue.startsWith(`${ctx.prefix}.`));
      for (const queue of names) await ctl('delete_queue', queue).catch(() => {});
    },
    emergencyStop: () => {
      try {
        execFileSync('rabbitmqctl', ['start_app'], { timeout: 60_000, stdio: 'ignore' });
      } catch {
        // reported by the next run's precheck
      }
    },
  };
}

const CACHE = process.env.POLYQUEUE_CACHE ?? join(homedir(), '.cache', 'polyqueue');

/** A private POLYQUEUE_CACHE for a services script: the run's own pid file, config and logs; the cached jars. */
function privateCache(ctx: BrokerContext, jarsDir: string, service: string): string {
  const cache = join(ctx.dir, `${service}-cache`);
  mkdirSync(cache, { recursive: true });
  const jars = join(CACHE, jarsDir);
  if (!existsSync(join(jars, 'lib', '.complete'))) {
    throw new Error(
      `${service}: no cached jars in ${jars}; run scripts/services/start-all.sh once to fetch them`,
    );
  }
  symlinkSync(jars, join(cache, jarsDir));
  return cache;
}

async function kafka(ctx: BrokerContext): Promise<BrokerServer> {
  const script = join(ctx.repoRoot, 'scripts/services/kafka/kafka.sh');
  const port = await freePort();
  let controller = await freePort();
  while (controller === port) controller = await freePort();
  const env = {
    ...process.env,
    POLYQUEUE_CACHE: privateCache(ctx, 'kafka-3.9.1', 'kafka'),
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controller),
    KAFKA_DATA_DIR: join(ctx.dir, 'kafka-data'),
  };
  const sh = (command: string, timeout: number) => run(script, [command], { env, timeout });
  const startAndWait = async () => {
    await sh('start', 300_000);
    await sh('wait', 150_000);
  };
  ctx.say(`starting a Kafka of this run's own on 127.0.0.1:${port}`);
  await startAndWait();
  // A session timeout is how long a dead member keeps its partitions: Kafka's lease.
  const sessionMs = Math.max(6_000, ctx.leaseMs);
  return {
    name: 'kafka',
    atLeastOnce: true,
    leaseMs: sessionMs,
    leaseIs: 'KAFKA_SESSION_TIMEOUT_MS (the broker minimum is 6 s) = JOB_LEASE_MS, the idempotency claim',
    env: {
      // The dead worker's idempotency claim outlives the session unless leased alike (default 30 s).
      JOB_LEASE_MS: String(sessionMs),
      BROKER: 'kafka',
      KAFKA_BROKERS: `127.0.0.1:${port}`,
      POLYQUEUE_PREFIX: ctx.prefix,
      KAFKA_SESSION_TIMEOUT_MS: String(sessionMs),
      KAFKA_HEARTBEAT_INTERVAL_MS: String(Math.floor(sessionMs / 6)),
      KAFKA_REBALANCE_TIMEOUT_MS: String(2 * sessionMs),
    },
    restart: async () => {
      try {
        await sh('stop', 120_000);
      } finally {
        await startAndWait();
      }
    },
    notes: [`own single-node Kafka :${port}`],
    teardown: async () => {
      await sh('stop', 120_000).catch((error) => ctx.say(`kafka stop: ${error}`));
    },
    emergencyStop: () => {
      try {
        execFileSync(script, ['stop'], { env, timeout: 60_000, stdio: 'ignore' });
      } catch {
        // nothing more to do on exit
      }
    },
  };
}

async function sqs(ctx: BrokerContext): Promise<BrokerServer> {
  const script = join(ctx.repoRoot, 'scripts/services/elasticmq/elasticmq.sh');
  const port = await freePort();
  const env = {
    ...process.env,
    POLYQUEUE_CACHE: privateCache(ctx, 'elasticmq-1.6.16', 'elasticmq'),
    ELASTICMQ_PORT: String(port),
    ELASTICMQ_PERSIST: '1',
    ELASTICMQ_DATA_DIR: join(ctx.dir, 'elasticmq-data'),
  };
  const sh = (command: string, timeout: number) => run(script, [command], { env, timeout });
  const startAndWait = async () => {
    await sh('start', 300_000);
    await sh('wait', 120_000);
  };
  ctx.say(`starting an ElasticMQ of this run's own (persistent) on 127.0.0.1:${port}`);
  await startAndWait();
  const visibilityS = Math.max(1, Math.round(ctx.leaseMs / 1000));
  return {
    name: 'sqs',
    atLeastOnce: true,
    leaseMs: visibilityS * 1000,
    leaseIs: 'SQS_VISIBILITY_TIMEOUT_S',
    env: {
      BROKER: 'sqs',
      SQS_ENDPOINT: `http://127.0.0.1:${port}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'chaos',
      AWS_SECRET_ACCESS_KEY: 'chaos',
      POLYQUEUE_PREFIX: ctx.prefix,
      SQS_VISIBILITY_TIMEOUT_S: String(visibilityS),
    },
    restart: async () => {
      try {
        await sh('stop', 60_000);
      } finally {
        await startAndWait();
      }
    },
    notes: [`own ElasticMQ :${port} with ELASTICMQ_PERSIST=1 (H2)`],
    teardown: async () => {
      await sh('stop', 60_000).catch((error) => ctx.say(`elasticmq stop: ${error}`));
    },
    emergencyStop: () => {
      try {
        execFileSync(script, ['stop'], { env, timeout: 60_000, stdio: 'ignore' });
      } catch {
        // nothing more to do on exit
      }
    },
  };
}

async function mysql(ctx: BrokerContext): Promise<BrokerServer> {
  const client = (sql: string) =>
    run('mariadb', ['-uroot', '-h127.0.0.1', '-P3306', '-N', '-B', 'test', '-e', sql], { timeout: 30_000 });
  const accepts = async () => {
    try {
      await run('mariadb-admin', ['-uroot', '-h127.0.0.1', '--connect-timeout=1', 'ping'], {
        timeout: 5_000,
      });
      return true;
    } catch {
      return false;
    }
  };
  const running = async () => {
    try {
      await run('pidof', ['mariadbd']);
      return true;
    } catch {
      return false;
    }
  };
  const until = async (check: () => Promise<boolean>, what: string) => {
    const deadline = Date.now() + 60_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(200);
    }
  };
  const startServer = async () => {
    await run('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd']);
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
        execFileSync(
          'start-stop-daemon',
          ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd'],
          { timeout: 10_000, stdio: 'ignore' },
        );
      } catch {
        // reported by the next run's precheck
      }
    },
  };
}
