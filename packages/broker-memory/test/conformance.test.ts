import { MemoryBroker } from '@polyqueue/broker-memory';
import { runConformanceSuite } from '@polyqueue/testkit';

const namespace = 'conformance';
const foreignProducer = new MemoryBroker({ namespace });

runConformanceSuite({
  broker: 'memory',
  env: { MEMORY_NAMESPACE: namespace },
  serverHint: 'nothing (in-process)',
  publishRaw: async (queue, body) => foreignProducer.publishRaw(queue, body),
});
