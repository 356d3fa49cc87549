import { runWorkerRegistrySuite } from '@polyqueue/testkit';
import { createMysqlWorkerRegistry } from '../src/index';
import { MYSQL_URL, SERVER_HINT } from './server';

runWorkerRegistrySuite('mysql', async () => {
  try {
    return await createMysqlWorkerRegistry(`${MYSQL_URL}?prefix=polyqueue_statetest`);
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});
