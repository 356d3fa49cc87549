import { createRedisQueueLimits } from '@polyqueue/broker-redis';
import { runQueueLimitsSuite } from '@polyqueue/testkit';
import { clusterNodes } from './redis-cluster';
import { REDIS_URL, SERVER_HINT } from './redis-server';

runQueueLimitsSuite('redis', async () => {
  try {
    return await createRedisQueueLimits(REDIS_URL, { prefix: 'pqtest' });
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});

runQueueLimitsSuite('redis cluster', async () => {
  const { nodes } = await clusterNodes();
  return createRedisQueueLimits(REDIS_URL, { prefix: 'pqtest', clusterNodes: nodes.split(',') });
});
