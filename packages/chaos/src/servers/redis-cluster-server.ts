/**
 * redis-reliable, redis-streams with `--redis-cluster`: the shared local Redis Cluster
 * (scripts/services/redis-cluster/, 3 masters + 3 replicas), the state store on it too; the
 * restart is a master failover: the master serving the queue's slot is SIGKILLed, its replica
 * takes over, the killed node rejoins as a replica (redis-failover.ts).
 */
import {
  CLUSTER_HINT,
  checkCluster,
  clusterEpoch,
  deleteKeys,
  localClusterNodes,
  ownerOf,
} from './redis-cluster';
import { emergencyRestart, failoverMasterOf, restoreCluster } from './redis-failover';
import type { BrokerContext, BrokerName, BrokerServer } from './types';

/** The queue the chaos run's jobs go to (send_email), whose key's slot the failover moves. */
const EMAIL_QUEUE = 'email';
/** The Redis state store's prefix (not POLYQUEUE_PREFIX) and its records' hash tag on a cluster. */
const STATE_PREFIX = 'polyqueue';

export async function redisCluster(name: BrokerName, ctx: BrokerContext): Promise<BrokerServer> {
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
