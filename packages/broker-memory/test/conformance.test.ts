import { drivers, MemoryBroker } from '@polyqueue/broker-memory';
import { connectDriver, runConformanceSuite } from '@polyqueue/testkit';

const namespace = 'conformance';
const foreignProducer = new MemoryBroker({ namespace });

const env = { MEMORY_NAMESPACE: namespace };

runConformanceSuite({
  broker: 'memory',
  // In-process only (not crossProcess): the crash scenario, which forks a consumer, does not apply.
  createBroker: () => connectDriver(drivers.memory, env),
  env,
  serverHint: 'nothing (in-process)',
  publishRaw: async (queue, body) => foreignProducer.publishRaw(queue, body),
});
