import { connectDriver, runConformanceSuite } from '@polyqueue/testkit';
import { afterAll } from 'vitest';
import { drivers } from '../src/index';
import {
  AMQP_URL,
  deleteQueuesWithPrefix,
  ensureRabbitmqRunning,
  publishRaw,
  restartRabbitmq,
  SERVER_HINT,
} from './rabbitmq-server';

const prefix = `pqtest${process.pid}`;
const queueType = process.env.AMQP_QUEUE_TYPE === 'quorum' ? 'quorum' : 'classic';

const env = {
  AMQP_URL,
  AMQP_QUEUE_TYPE: queueType,
  POLYQUEUE_PREFIX: prefix,
  AMQP_RECONNECT_MAX_MS: '1000',
  AMQP_CONNECT_TIMEOUT_MS: '10000',
  AMQP_HEARTBEAT_S: '5',
};

runConformanceSuite({
  broker: 'rabbitmq',
  createBroker: () => connectDriver(drivers.rabbitmq!, env),
  driverModule: new URL('../src/index.ts', import.meta.url).href,
  env,
  serverHint: SERVER_HINT,
  publishRaw: (queue, body) => publishRaw(`${prefix}.${queue}`, body),
  restartServer: restartRabbitmq,
  // Durable queues (classic or quorum) and persistent messages survive stop_app/start_app;
  // unacked deliveries go back to their queue when the connection closes.
  durableAcrossRestart: true,
  batchSize: 500,
});

afterAll(async () => {
  // Whatever happened in the restart scenario, leave the broker running, then tidy up.
  await ensureRabbitmqRunning();
  await deleteQueuesWithPrefix(prefix);
}, 120_000);
