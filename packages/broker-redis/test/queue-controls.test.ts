import { createRedisQueueControls } from '@polyqueue/broker-redis';
import { runQueueControlsSuite } from '@polyqueue/testkit';
import { clusterNodes } from './redis-cluster';
import { REDIS_URL, SERVER_HINT } from './redis-server';

runQueueControlsSuite('redis', async () => {
  try {
    return await createRedisQueueControls(REDIS_URL, { prefix: 'pqtest' });
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});

runQueueControlsSuite('redis cluster', async () => {
  const { nodes } = await clusterNodes();
  return createRedisQueueControls(REDIS_URL, { prefix: 'pqtest', clusterNodes: nodes.split(',') });
});
