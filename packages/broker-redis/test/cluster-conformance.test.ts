/**
 * The conformance suite and the state-store suite on a Redis Cluster (REDIS_CLUSTER_NODES),
 * for the two at-least-once drivers. Its restart scenario is a rolling master failover: each
 * master is SIGKILLed and its replica takes over; no job may be lost.
 */
import { createRedisStateStore } from '@polyqueue/broker-redis';
import { runStateStoreSuite } from '@polyqueue/testkit';
import { afterAll } from 'vitest';
import { runRedisConformance } from './redis-brokers';
import { CLUSTER_HINT, clusterClient, clusterNodes, rollingFailover } from './redis-cluster';

const LEASE_MS = 2_000;
const PREFIX = 'pqcluster';
const cluster = await clusterNodes();
const env = {
  REDIS_CLUSTER_NODES: cluster.nodes,
  POLYQUEUE_PREFIX: PREFIX,
  REDIS_LEASE_MS: String(LEASE_MS),
  REDIS_BLOCK_MS: '500',
  REDIS_POLL_MS: '100',
};

const raw = clusterClient(cluster.nodes);
afterAll(() => {
  raw.disconnect();
});

/** Only the cluster the project's script started can be failed over by the test. */
const restartServer = cluster.local ? rollingFailover(cluster.nodes) : undefined;

for (const broker of ['redis-reliable', 'redis-streams'] as const) {
  runRedisConformance(broker, {
    env,
    raw,
    prefix: PREFIX,
    leaseMs: LEASE_MS,
    serverHint: CLUSTER_HINT,
    restartServer,
    // AOF and a replica per master: a failover loses nothing that was acknowledged a moment ago.
    durableAcrossRestart: true,
  });
}

runStateStoreSuite('redis cluster', async () => {
  try {
    return await createRedisStateStore('redis://', {
      prefix: PREFIX,
      clusterNodes: cluster.nodes.split(','),
    });
  } catch (error) {
    throw new Error(`cannot reach ${CLUSTER_HINT}: ${(error as Error).message}`);
  }
});
