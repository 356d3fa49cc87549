import { type BrokerDriver, defineDriver } from '@polyqueue/core';
import { kafkaEnvSchema } from './config';
import { KafkaBroker } from './kafka-broker';

export { type KafkaConfig, kafkaEnvSchema, queueTopics } from './config';
export { KAFKA_CAPABILITIES, KafkaBroker } from './kafka-broker';

export const drivers: Record<string, BrokerDriver> = {
  kafka: defineDriver({
    envSchema: kafkaEnvSchema,
    description:
      'Apache Kafka (kafkajs): at-least-once, per-key ordering, consumer-group pub/sub; delays and retries via a retry topic',
    createBroker: async (config, { logger }) => new KafkaBroker(config, logger),
  }),
};
