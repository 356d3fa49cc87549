import { connectDriver, runConformanceSuite } from '@polyqueue/testkit';
import { afterAll, describe } from 'vitest';
import { drivers } from '../src/index';
import {
  deleteQueuesWithPrefix,
  ensureElasticmqRunning,
  publishRaw,
  restartElasticmq,
  SERVER_HINT,
  SQS_ENDPOINT,
} from './elasticmq';

const prefix = `pqt${process.pid}`;
const VISIBILITY_S = 4;

for (const fifo of [false, true]) {
  describe(fifo ? 'FIFO queues' : 'standard queues', () => {
    const env = {
      SQS_ENDPOINT,
      AWS_REGION: 'us-east-1',
      SQS_FIFO: String(fifo),
      SQS_VISIBILITY_TIMEOUT_S: String(VISIBILITY_S),
      // Short polls keep idle consumers cheap to stop; production uses 20.
      SQS_WAIT_TIME_S: '2',
      POLYQUEUE_PREFIX: prefix,
    };
    runConformanceSuite({
      broker: 'sqs',
      createBroker: () => connectDriver(drivers.sqs, env),
      driverModule: new URL('../src/index.ts', import.meta.url).href,
      env,
      serverHint: SERVER_HINT,
      publishRaw: (queue, body) => publishRaw(`${prefix}-${queue}${fifo ? '.fifo' : ''}`, body),
      restartServer: restartElasticmq,
      // ElasticMQ as started here keeps queues in memory (ELASTICMQ_PERSIST unset): a restart
      // empties them. The scenario then checks only that consuming resumes.
      durableAcrossRestart: false,
      leaseMs: VISIBILITY_S * 1000,
      batchSize: 300,
    });
  });
}

afterAll(async () => {
  // Whatever happened in the restart scenario, leave the server running, then tidy up.
  await ensureElasticmqRunning();
  await deleteQueuesWithPrefix(prefix);
}, 300_000);
