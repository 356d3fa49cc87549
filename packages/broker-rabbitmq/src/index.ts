import { type BrokerDriver, defineDriver } from '@polyqueue/core';
import { rabbitmqEnvSchema } from './config';
import { createRabbitmqBroker } from './rabbitmq-broker';

export { DELAY_TIERS_MS, groupQueueNames, queueNames, rabbitmqEnvSchema, topicExchange } from './config';
export { createRabbitmqBroker } from './rabbitmq-broker';

export const drivers: Record<string, BrokerDriver> = {
  rabbitmq: defineDriver({
    envSchema: rabbitmqEnvSchema,
    description:
      'RabbitMQ: durable queues, publisher confirms, manual acks; at-least-once, redelivery when a consumer connection drops; ' +
      'delays by TTL tiers + dead-letter exchange, priority (classic queues), fanout pub/sub',
    createBroker: createRabbitmqBroker,
  }),
};
