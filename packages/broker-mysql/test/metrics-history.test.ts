import { runMetricsHistorySuite } from '@polyqueue/testkit';
import { createMysqlMetricsHistory } from '../src/index';
import { MYSQL_URL, SERVER_HINT } from './server';

runMetricsHistorySuite('mysql', async () => {
  try {
    return await createMysqlMetricsHistory(`${MYSQL_URL}?prefix=polyqueue_statetest`);
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});
