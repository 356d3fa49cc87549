import { type Logger, redact } from '@polyqueue/core';
import { Cluster, Redis } from 'ioredis';
import { defineScripts } from './scripts';

/** One Redis server (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES): the same commands. */
export type RedisClient = Redis | Cluster;

/**
 * Where to connect: `url` alone is one server; with `clusterNodes` (host:port of one or more
 * cluster nodes; the rest are discovered) it is a Redis Cluster, and `url` only lends its
 * user, password and TLS (rediss:) to every node.
 */
export interface RedisTarget {
  url: string;
  clusterNodes?: readonly string[];
}

/** What failed connections name: the (redacted) URL, or the cluster's nodes. */
export function describeTarget(target: RedisTarget): string {
  return target.clusterNodes?.length
    ? `Redis Cluster at ${target.clusterNodes.join(',')}`
    : `Redis at ${redact(target.url)}`;
}

/**
 * One ioredis connection. It reconnects forever after a drop or a server restart, backing off
 * up to 2 s between tries, so a worker never needs a manual step. A command connection gives a
 * command up after a few reconnect attempts (a publish fails instead of hanging); a blocking
 * connection (one per consumer, so a BLPOP never delays anyone else's commands) keeps its
 * command until the server is back, and its finite block timeout makes it return soon after.
 *
 * On a cluster, one Cluster client holds one connection per master and sends each command to
 * the master of its key's slot; a blocking consumer gets a Cluster client of its own (so its
 * BLMOVE or XREADGROUP BLOCK holds only its own connection to that master). After a master
 * dies, commands sent to it fail with "Connection is closed" or CLUSTERDOWN and are retried
 * after a refresh of the slot map, so they land on the promoted replica.
 */
export function connect(
  target: RedisTarget,
  logger: Logger,
  role: string,
  options: { blocking?: boolean } = {},
): RedisClient {
  const redis = target.clusterNodes?.length
    ? connectCluster(target.url, target.clusterNodes, role, options)
    : new Redis(target.url, {
        connectionName: `polyqueue:${role}`,
        maxRetriesPerRequest: options.blocking ? null : 3,
        retryStrategy: (times) => Math.min(100 * times, 2_000),
        // A READONLY replica after failover: reconnect to whatever the URL points at now.
        reconnectOnError: (error) => error.message.startsWith('READONLY'),
      });
  let lastError = '';
  redis.on('error', (error: Error) => {
    // ioredis emits an error per failed reconnect; log each distinct one once.
    if (error.message !== lastError) logger.warn({ err: error, role }, 'redis connection error');
    lastError = error.message;
  });
  redis.on('ready', () => {
    if (lastError !== '') logger.info({ role }, 'redis connection restored');
    lastError = '';
  });
  defineScripts(redis);
  return redis;
}

function connectCluster(
  url: string,
  nodes: readonly string[],
  role: string,
  options: { blocking?: boolean },
): Cluster {
  const parsed = new URL(url);
  return new Cluster(
    nodes.map((node) => {
      const { host, port } = splitNode(node);
      return { host, port };
    }),
    {
      redisOptions: {
        connectionName: `polyqueue:${role}`,
        username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
        password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
        tls: parsed.protocol === 'rediss:' ? {} : undefined,
        maxRetriesPerRequest: options.blocking ? null : 3,
      },
      // The whole cluster unreachable: try again forever, as one server's connection does.
      clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
      // A master that dies mid-command: wait, refresh the slot map, send again (to its replica,
      // once promoted); likewise while the cluster says CLUSTERDOWN during the election.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 200,
      maxRedirections: 64,
      slotsRefreshTimeout: 2_000,
      // Notice a failover (or a resharding) even on a connection that never sees MOVED.
      slotsRefreshInterval: 2_000,
    },
  );
}

/** `host:port` (or `[v6]:port`) -> its parts; the port defaults to 6379. */
export function splitNode(node: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(node.trim());
  if (!match) throw new Error(`not a host:port: ${node}`);
  return { host: match[1]!, port: match[2] === undefined ? 6379 : Number(match[2]) };
}

/** Waits for the first connection; fails with a message naming the (redacted) URL or the nodes. */
export async function connected(redis: RedisClient, target: RedisTarget): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    // A Cluster client retries its startup nodes for ever and queues the PING meanwhile.
    const gaveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no cluster node answered within 10 s')), 10_000);
    });
    await Promise.race([redis.ping(), gaveUp]);
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot reach ${describeTarget(target)}: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** For /readyz: throws at once while the connection is down instead of queueing a PING. */
export async function ping(redis: RedisClient): Promise<void> {
  if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`);
  await redis.ping();
}

/** Quits politely, or drops the socket when the server is not there to answer. */
export async function disconnect(redis: RedisClient): Promise<void> {
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}
