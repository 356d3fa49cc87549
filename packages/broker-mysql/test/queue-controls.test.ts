import { runQueueControlsSuite } from '@polyqueue/testkit';
import { createMysqlQueueControls } from '../src/index';
import { MYSQL_URL, SERVER_HINT } from './server';

runQueueControlsSuite('mysql', async () => {
  try {
    return await createMysqlQueueControls(`${MYSQL_URL}?prefix=polyqueue_controlstest`);
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});
