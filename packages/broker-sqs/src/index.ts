import { defineDriver } from '@polyqueue/core';
import { sqsEnvSchema } from './config';
import { SqsBroker } from './sqs-broker';

export { createSqsClient, type SqsConfig, sqsEnvSchema } from './config';
export { SqsBroker, sqsCapabilities } from './sqs-broker';

export const drivers = {
  sqs: defineDriver({
    envSchema: sqsEnvSchema,
    description:
      'Amazon SQS or ElasticMQ: at-least-once with a visibility-timeout lease; native delays (standard) or per-key order (SQS_FIFO=true); emulated pub/sub',
    async createBroker(config, { logger }) {
      const broker = new SqsBroker(config, logger);
      try {
        await broker.ping();
      } catch (error) {
        await broker.close();
        const where = config.SQS_ENDPOINT ?? `AWS SQS in ${config.AWS_REGION}`;
        throw new Error(`cannot reach SQS at ${where}: ${(error as Error).message}`);
      }
      return broker;
    },
  }),
};
