import { runStateStoreSuite } from '@polyqueue/testkit';
import { createMysqlStateStore } from '../src/index';
import { MYSQL_URL, SERVER_HINT } from './server';

runStateStoreSuite('mysql', async () => {
  try {
    return await createMysqlStateStore(`${MYSQL_URL}?prefix=polyqueue_statetest`);
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});
