/**
 * A 3-node RabbitMQ cluster (scripts/services/rabbitmq-cluster: nodes pq1..pq3 beside the system
 * node) with a quorum queue, AMQP_QUEUE_TYPE=quorum as docs/brokers/rabbitmq.md recommends for
 * clusters. The node holding the queue's leader is SIGKILLed under load while the worker and
 * the producer stay connected to another node. Counted: every job whose publish was confirmed
 * is handled (0 lost), nothing left ready or unacked afterwards (0 stuck). Run by
 * `npm run test:cluster`; the test starts the cluster and stops it when it ends.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createEnvelope, parseEnv, type QueueStats, silentLogger } from '@polyqueue/core';
import { killUnderLoad, nothingLeft } from '@polyqueue/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRabbitmqBroker, queueNames, rabbitmqEnvSchema } from '../../src/index';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(
  new URL('../../../../scripts/services/rabbitmq-cluster/rabbitmq-cluster.sh', import.meta.url),
);
const cluster = (...args: string[]) => run('bash', [SCRIPT, ...args], { timeout: 300_000 });

const JOBS = 3_000;
const BATCH = 50;
const prefix = `pqcluster${process.pid}`;
const queue = 'load';
let urls: string[] = [];
type Broker = Awaited<ReturnType<typeof createRabbitmqBroker>>;
const brokers: Broker[] = [];

function connect(url: string): Promise<Broker> {
  return createRabbitmqBroker(
    parseEnv(rabbitmqEnvSchema, {
      AMQP_URL: url,
      AMQP_QUEUE_TYPE: 'quorum',
      POLYQUEUE_PREFIX: prefix,
      AMQP_RECONNECT_MAX_MS: '500',
    }),
    { logger: silentLogger() },
  );
}

beforeAll(async () => {
  try {
    // A fresh cluster each run: nodes left by a run that was killed (a CI run ends every process
    // it leaves) can keep Mnesia state that makes the next start wait for peers forever.
    await cluster('stop').catch(() => {});
    await cluster('clean');
    await cluster('start');
  } catch (error) {
    throw new Error(
      `cannot start the 3-node RabbitMQ (scripts/services/rabbitmq-cluster/rabbitmq-cluster.sh start): ${(error as Error).message}`,
    );
  }
  urls = (await cluster('urls')).stdout.trim().split(',');
}, 300_000);

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close().catch(() => {})));
  // This file started the cluster: stop it, whatever happened.
  await cluster('stop');
}, 180_000);

describe('RabbitMQ, 3 nodes, quorum queue: the leader’s node SIGKILLed under load', () => {
  it('loses no confirmed job and leaves none stuck', async (ctx) => {
    const started = Date.now();
    // Declared through node 1 (a quorum queue's leader starts on the declaring connection's
    // node); then the worker and the producer connect to another node, which stays up.
    const declaring = await connect(urls[0]!);
    brokers.push(declaring);
    const warmUp = createEnvelope('load', { warmUp: true });
    await declaring.publish(queue, [{ envelope: warmUp }]);
    await declaring.close();
    const leader = Number((await cluster('leader', queueNames(prefix, queue).work)).stdout.trim());
    const other = leader === 1 ? 2 : 1;
    const broker = await connect(urls[other - 1]!);
    brokers.push(broker);

    const load = await killUnderLoad({
      broker,
      queue,
      jobs: JOBS,
      batch: BATCH,
      published: [warmUp.id],
      kill: () => cluster('kill', String(leader)).then(() => {}),
    });
    const { published, acked, lost, neverDelivered, failedAcks, publishRetries, timedOut } = load;
    expect(
      lost,
      `${timedOut ? `${timedOut.message}: ` : ''}${lost.length} confirmed jobs not acked (${neverDelivered.length} never ` +
        `delivered); ${failedAcks} acks failed, ${publishRetries} publish retries`,
    ).toEqual([]);
    const admin = broker as unknown as { stats(queue: string): Promise<QueueStats> };
    const stats = await nothingLeft(() => admin.stats(queue));
    await ctx.annotate(
      `pq${leader} (the quorum leader's node; worker on pq${other}) SIGKILLed after ${JOBS / 3} of ${JOBS} publishes: ${published.size} confirmed, ` +
        `${acked.size} handled, 0 lost, 0 stuck (ready ${stats.ready}, unacked ${stats.inFlight}); ` +
        `${load.handled - acked.size} redeliveries, ${failedAcks} failed acks, ${publishRetries} publish retries; ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    await load.stop();
    // The killed node comes back and rejoins the cluster.
    await cluster('start-node', String(leader));
  }, 420_000);
});
