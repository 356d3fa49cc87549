import { type BrokerDriver, defineDriver } from '@polyqueue/core';
import { type RedisEnv, redisEnvSchema, settingsFrom } from './config';
import { createListBroker } from './list-broker';
import { createStreamsBroker } from './streams-broker';

export { parseClusterNodes, type RedisEnv, type RedisSettings, redisEnvSchema, settingsFrom } from './config';
export { groupKeys, type QueueKeys, queueKeys, topicGroupsKey } from './keys';
export { createRedisMetricsHistory, type RedisMetricsHistoryOptions } from './metrics-history';
export { createRedisQueueControls, type RedisQueueControlsOptions } from './queue-controls';
export { createRedisQueueLimits, type RedisQueueLimitsOptions } from './queue-limits';
export { createRedisScheduleStore, type RedisScheduleStoreOptions } from './schedule-store';
export { createRedisStateStore, type RedisStateStoreOptions } from './state-store';
export { CONSUMER_GROUP, entryBody } from './streams-broker';
export { createRedisWorkerRegistry, type RedisWorkerRegistryOptions } from './worker-registry';

/** The three Redis drivers, keyed by BROKER name; see the header of each module. */
export const drivers: Record<string, BrokerDriver> = {
  'redis-list': defineDriver({
    envSchema: redisEnvSchema,
    description:
      'Redis list, RPUSH/BLPOP: at-most-once (a consumer crash loses its job); delays, priority, pub/sub emulated',
    createBroker: (config: RedisEnv, { logger }) => createListBroker(settingsFrom(config), 'plain', logger),
  }),
  'redis-reliable': defineDriver({
    envSchema: redisEnvSchema,
    description:
      'Redis list, BLMOVE + per-job lease: at-least-once, crashed jobs return after REDIS_LEASE_MS',
    createBroker: (config: RedisEnv, { logger }) =>
      createListBroker(settingsFrom(config), 'reliable', logger),
  }),
  'redis-streams': defineDriver({
    envSchema: redisEnvSchema,
    description:
      'Redis Streams, consumer group: at-least-once, XAUTOCLAIM after REDIS_LEASE_MS, delivery-count limit',
    createBroker: (config: RedisEnv, { logger }) => createStreamsBroker(settingsFrom(config), logger),
  }),
};
