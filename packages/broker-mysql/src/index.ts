import { type BrokerDriver, defineDriver } from '@polyqueue/core';
import { brokerOptions, mysqlEnvSchema } from './config';
import { createMysqlBroker } from './mysql-broker';

export { brokerOptions, type MysqlConfig, mysqlEnvSchema, tableNames } from './config';
export { createMysqlMetricsHistory } from './metrics-history';
export { createMysqlBroker, MYSQL_CAPABILITIES } from './mysql-broker';
export { createMysqlPool } from './pool';
export { createMysqlQueueControls } from './queue-controls';
export { createMysqlQueueLimits } from './queue-limits';
export { createMysqlScheduleStore } from './schedule-store';
export { queueTableDdl, rowBody } from './schema';
export { createMysqlStateStore } from './state-store';
export { createMysqlWorkerRegistry } from './worker-registry';

export const drivers: Record<string, BrokerDriver> = {
  mysql: defineDriver({
    envSchema: mysqlEnvSchema,
    description:
      'MySQL/MariaDB table queue (Q4M style): at-least-once with leases, native delay, priority and dead-letter table',
    createBroker: (config, { logger }) => createMysqlBroker(brokerOptions(config), logger),
  }),
};
