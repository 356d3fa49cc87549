/**
 * The load of the cluster tests (a node SIGKILLed under load, per broker in
 * test/cluster/): one consumer acking every job, batches published with retries while the
 * cluster elects a new leader, the kill once a third is published and jobs are being handled,
 * then the wait until every published job was acked. Each test keeps its cluster, its kill and
 * its own account of what was lost.
 */

import {
  type Broker,
  createEnvelope,
  type Envelope,
  type OutgoingMessage,
  type QueueStats,
} from '@polyqueue/core';
import { startConsumer } from './consumers';
import { eventually, HandlerSpy } from './spy';

export interface KillUnderLoadOptions {
  broker: Broker;
  queue: string;
  jobs: number;
  batch: number;
  /** How a job is published (a key, for instance); `{ envelope }` by default. */
  message?: (envelope: Envelope) => OutgoingMessage;
  /** Ids already published (a warm-up job), to be counted as the others. */
  published?: readonly string[];
  /** Kills a node; called once, when a third of the jobs is published and one was handled. */
  kill(): Promise<void>;
}

export interface KillUnderLoadResult {
  published: Set<string>;
  acked: Set<string>;
  /** Every id a handler saw, once each. */
  received: Set<string>;
  /** Deliveries, redeliveries included. */
  handled: number;
  /** Published but not acked. */
  lost: string[];
  /** Of `lost`, those no handler saw. */
  neverDelivered: string[];
  failedAcks: number;
  publishRetries: number;
  /** Set when not every job was acked in time. */
  timedOut: Error | undefined;
  /** Stops the consumer. */
  stop(): Promise<void>;
}

export async function killUnderLoad(options: KillUnderLoadOptions): Promise<KillUnderLoadResult> {
  const { broker, queue, jobs, batch: size } = options;
  const toMessage = options.message ?? ((envelope: Envelope) => ({ envelope }));
  const acked = new Set<string>();
  let failedAcks = 0;
  const spy = new HandlerSpy(180_000);
  const consumer = startConsumer(
    broker,
    queue,
    spy.handler('c1', async (delivery, received) => {
      try {
        await delivery.ack();
        acked.add(received.id);
      } catch {
        failedAcks += 1; // the ack did not reach the broker: the job comes again
      }
    }),
    8,
  );
  await consumer.ready;

  const published = new Set<string>(options.published);
  let publishRetries = 0;
  let killed = false;
  for (let sent = 0; sent < jobs; sent += size) {
    const batch: Envelope[] = Array.from({ length: size }, (_, i) => createEnvelope('load', { n: sent + i }));
    // A batch refused while the cluster elects a new leader is sent again.
    for (let attempt = 1; ; attempt++) {
      try {
        await broker.publish(queue, batch.map(toMessage));
        break;
      } catch (error) {
        publishRetries += 1;
        if (attempt >= 30) throw new Error(`publish failed 30 times: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    for (const envelope of batch) published.add(envelope.id);
    if (!killed && published.size >= jobs / 3) {
      // Jobs are flowing (some handled, more queued): kill now.
      await spy.waitFor(() => acked.size > 0, 'the first handled job', 60_000);
      await options.kill();
      killed = true;
    }
  }

  const timedOut = await spy
    .waitFor(
      () => [...published].every((id) => acked.has(id)),
      `all ${published.size} published jobs to be handled`,
      120_000,
    )
    .then(
      () => undefined,
      (error: Error) => error,
    );
  const received = spy.distinctIds();
  const lost = [...published].filter((id) => !acked.has(id));
  return {
    published,
    acked,
    received,
    handled: spy.received.length,
    lost,
    neverDelivered: lost.filter((id) => !received.has(id)),
    failedAcks,
    publishRetries,
    timedOut,
    stop: () => consumer.stop(),
  };
}

/** Waits until nothing is ready or in flight (0 stuck) and returns those counts. */
export function nothingLeft(stats: () => Promise<QueueStats>): Promise<QueueStats> {
  return eventually(
    stats,
    (s) => s.ready === 0 && s.inFlight === 0,
    'no job ready or in flight',
    60_000,
    500,
  );
}
