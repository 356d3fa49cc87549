import { createRedisMetricsHistory } from '@polyqueue/broker-redis';
import { runMetricsHistorySuite } from '@polyqueue/testkit';
import { CLUSTER_HINT, clusterNodes } from './redis-cluster';
import { REDIS_URL, SERVER_HINT } from './redis-server';

runMetricsHistorySuite('redis', async () => {
  try {
    return await createRedisMetricsHistory(REDIS_URL, { prefix: 'pqtest' });
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});

// On a cluster every key sits under the state store's hash tag, so one flush is one MULTI.
runMetricsHistorySuite('redis cluster', async () => {
  const { nodes } = await clusterNodes();
  try {
    return await createRedisMetricsHistory('redis://127.0.0.1', {
      prefix: 'pqtest',
      clusterNodes: nodes.split(','),
    });
  } catch (error) {
    throw new Error(`cannot reach ${CLUSTER_HINT}: ${(error as Error).message}`);
  }
});
