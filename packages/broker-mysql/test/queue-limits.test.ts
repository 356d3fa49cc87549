import { runQueueLimitsSuite } from '@polyqueue/testkit';
import { createMysqlQueueLimits } from '../src/index';
import { MYSQL_URL, SERVER_HINT } from './server';

runQueueLimitsSuite('mysql', async () => {
  try {
    return await createMysqlQueueLimits(`${MYSQL_URL}?prefix=polyqueue_limitstest`);
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});
