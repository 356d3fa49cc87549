import { createRedisStateStore } from '@polyqueue/broker-redis';
import { runStateStoreSuite } from '@polyqueue/testkit';
import { REDIS_URL, SERVER_HINT } from './redis-server';

runStateStoreSuite('redis', async () => {
  try {
    return await createRedisStateStore(REDIS_URL, { prefix: 'pqtest' });
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});
