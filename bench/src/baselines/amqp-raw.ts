/**
 * The rabbitmq driver's baseline: a hand-written amqplib loop that puts on the wire what the
 * driver does for publish() and consume(), and nothing else.
 *
 * Mirrors packages/broker-rabbitmq/src:
 * - rabbitmq-broker.ts publish() + publisher.ts publishAll(): one ConfirmChannel; a batch of B
 *   persistent, mandatory JSON messages (message-id, timestamp, priority 1) on the default
 *   exchange, then wait until the broker confirmed all of them (one batch of B outstanding).
 * - topology.ts: the work queue is durable with x-max-priority 2 (AMQP_QUEUE_TYPE=quorum: a
 *   quorum queue without priority, as the driver does). The driver's dead and delay-tier
 *   queues are not declared: nothing goes through them in this run.
 * - consumer.ts: a confirm channel with prefetch = concurrency, manual acks, the async handler
 *   (raw-handler.ts) run per message on its parsed body and channel.ack() once it resolved.
 * The connection, queue declaration, publish call and consuming run are amqp-common.ts, shared
 * with rabbitmq-best.ts.
 */
import { createEnvelope } from '@polyqueue/core';
import { Countdown, perSecond, type Rates } from '../measure';
import { amqpRun } from './amqp-common';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';

export async function amqpRaw(options: BaselineOptions): Promise<Rates> {
  const run = await amqpRun(options, 'raw');
  try {
    const t0 = performance.now();
    // Declared inside the timing, as the driver's first publish() declares its topology.
    const publisher = await run.declare();
    for (let i = 0; i < options.jobs; i += options.batch) {
      const n = Math.min(options.batch, options.jobs - i);
      const now = Date.now();
      for (let k = 0; k < n; k++) {
        await run.publish(publisher, createEnvelope('bench_job', { i: i + k }), {
          contentEncoding: 'utf-8',
          timestamp: Math.floor(now / 1000),
          headers: {},
        });
      }
      await publisher.waitForConfirms();
    }
    const enqueuePerSec = perSecond(options.jobs, t0);
    await publisher.close();

    const countdown = new Countdown(options.jobs);
    const processPerSec = await run.consume(
      { confirm: true, prefetch: options.concurrency },
      (consumer, message) => {
        void rawHandler(JSON.parse(message.content.toString('utf8'))).then(() => {
          consumer.ack(message);
          countdown.tick();
        });
      },
      countdown.finished,
    );
    return { enqueuePerSec, processPerSec };
  } finally {
    await run.close();
  }
}
