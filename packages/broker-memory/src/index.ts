import { defineDriver } from '@polyqueue/core';
import { z } from 'zod';
import { MemoryBroker } from './memory-broker';

export { MemoryBroker } from './memory-broker';

export const drivers = {
  memory: defineDriver({
    description: 'in-process queues for unit tests; nothing survives the process',
    envSchema: z.object({ MEMORY_NAMESPACE: z.string().min(1).default('default') }),
    createBroker: async (config) => new MemoryBroker({ namespace: config.MEMORY_NAMESPACE }),
  }),
};
