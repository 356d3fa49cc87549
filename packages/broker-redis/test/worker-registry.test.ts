import { createRedisWorkerRegistry } from '@polyqueue/broker-redis';
import { runWorkerRegistrySuite } from '@polyqueue/testkit';
import { REDIS_URL, SERVER_HINT } from './redis-server';

runWorkerRegistrySuite('redis', async () => {
  try {
    return await createRedisWorkerRegistry(REDIS_URL, { prefix: 'pqtest' });
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});
