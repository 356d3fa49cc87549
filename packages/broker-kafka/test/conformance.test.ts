import { connectDriver, runConformanceSuite } from '@polyqueue/testkit';
import { afterAll } from 'vitest';
import { drivers } from '../src/index';
import {
  deleteWithPrefix,
  ensureKafkaRunning,
  KAFKA_BROKERS,
  publishRaw,
  restartKafka,
  SERVER_HINT,
} from './kafka-server';

const prefix = `pqtest${process.pid}`;
const SESSION_TIMEOUT_MS = 6_000;

const env = {
  KAFKA_BROKERS,
  POLYQUEUE_PREFIX: prefix,
  KAFKA_PARTITIONS: '3',
  // Short so a SIGKILLed consumer's partitions are reassigned quickly (6 s is the broker's minimum).
  KAFKA_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
  KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
  KAFKA_REBALANCE_TIMEOUT_MS: '15000',
};

runConformanceSuite({
  broker: 'kafka',
  createBroker: () => connectDriver(drivers.kafka!, env),
  driverModule: new URL('../src/index.ts', import.meta.url).href,
  env,
  serverHint: SERVER_HINT,
  publishRaw: (queue, body) => publishRaw(`${prefix}.${queue}`, body),
  restartServer: restartKafka,
  // Topics and committed offsets live in the log directory, which a restart keeps.
  durableAcrossRestart: true,
  leaseMs: SESSION_TIMEOUT_MS,
  batchSize: 500,
  timeoutMs: 30_000,
});

afterAll(async () => {
  // Whatever happened in the restart scenario, leave the broker running, then tidy up.
  await ensureKafkaRunning();
  await deleteWithPrefix(prefix);
}, 180_000);
