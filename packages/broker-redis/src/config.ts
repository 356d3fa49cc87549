import { intVariable, urlVariable } from '@polyqueue/core';
import { z } from 'zod';

/**
 * Environment variables of the three Redis drivers (names are the variables, with defaults).
 *
 * REDIS_URL             redis://[user:password@]host:port[/db] or rediss://... (TLS)
 * REDIS_CLUSTER_NODES   host:port,host:port,... of a Redis Cluster (one node is enough; the rest
 *                       are discovered); when set, the drivers use the cluster and REDIS_URL
 *                       only lends its user, password and TLS to every node
 * POLYQUEUE_PREFIX      key prefix; queue Q lives at `<prefix>:Q` (default polyqueue)
 * REDIS_BLOCK_MS        how long one blocking read waits (BLPOP, BLMOVE, XREADGROUP BLOCK); also
 *                       how soon an aborted consumer notices and how late a low-priority job
 *                       published to an idle redis-reliable queue can be picked up (redis-list
 *                       BLPOPs both lists)
 * REDIS_POLL_MS         how often a consumer looks for due delayed jobs at most (it also wakes at
 *                       the next due time it knows of)
 * REDIS_LEASE_MS        redis-reliable, redis-streams: how long a delivery stays with a consumer
 *                       without ack or extend() before another consumer takes it back;
 *                       redis-list: how long a crashed consumer's (lost) jobs still count in
 *                       stats().inFlight
 * REDIS_MAX_DELIVERIES  redis-streams: deliveries without a settle (crashes) before the entry
 *                       moves to the dead letters
 */
const NODE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** REDIS_CLUSTER_NODES: a comma-separated list of host:port; empty or unset means no cluster. */
export function clusterNodesVariable() {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      const nodes = (value ?? '')
        .split(',')
        .map((node) => node.trim())
        .filter((node) => node !== '');
      const bad = nodes.find((node) => !NODE.test(node));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `"${bad}" is not host:port (want host:port,host:port,...)` });
        return z.NEVER;
      }
      return nodes.length > 0 ? nodes : undefined;
    });
}

/** REDIS_CLUSTER_NODES read outside the driver schema (the Redis state store); throws on a bad value. */
export function parseClusterNodes(value: string | undefined): string[] | undefined {
  const parsed = clusterNodesVariable().safeParse(value);
  if (!parsed.success) throw new Error(`REDIS_CLUSTER_NODES: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export const redisEnvSchema = z.object({
  REDIS_URL: urlVariable(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: clusterNodesVariable(),
  POLYQUEUE_PREFIX: z
    .string()
    .regex(/^[^{}\s]+$/, 'must not contain braces or whitespace')
    .default('polyqueue'),
  REDIS_BLOCK_MS: intVariable(1_000, 10, 60_000),
  REDIS_POLL_MS: intVariable(500, 10, 60_000),
  REDIS_LEASE_MS: intVariable(30_000, 100),
  REDIS_MAX_DELIVERIES: intVariable(10, 1, 1_000),
});

export type RedisEnv = z.infer<typeof redisEnvSchema>;

export interface RedisSettings {
  url: string;
  /** REDIS_CLUSTER_NODES; absent for one server. */
  clusterNodes?: string[];
  prefix: string;
  blockMs: number;
  pollMs: number;
  leaseMs: number;
  maxDeliveries: number;
}

export function settingsFrom(env: RedisEnv): RedisSettings {
  return {
    url: env.REDIS_URL,
    ...(env.REDIS_CLUSTER_NODES ? { clusterNodes: env.REDIS_CLUSTER_NODES } : {}),
    prefix: env.POLYQUEUE_PREFIX,
    blockMs: env.REDIS_BLOCK_MS,
    pollMs: env.REDIS_POLL_MS,
    leaseMs: env.REDIS_LEASE_MS,
    maxDeliveries: env.REDIS_MAX_DELIVERIES,
  };
}
