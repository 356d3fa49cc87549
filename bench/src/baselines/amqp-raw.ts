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
 */
import { randomUUID } from 'node:crypto';
import { createEnvelope, encodeEnvelope } from '@polyqueue/core';
import amqp, { type Options } from 'amqplib';
import { perSecond, type Rates } from '../measure';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';

export async function amqpRaw(options: BaselineOptions): Promise<Rates> {
  const url = options.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const quorum = options.env.AMQP_QUEUE_TYPE === 'quorum';
  const connection = await amqp.connect(url);
  const queue = `raw.bench.${randomUUID()}`;
  try {
    const t0 = performance.now();
    // Declared inside the timing, as the driver's first publish() declares its topology.
    const publisher = await connection.createConfirmChannel();
    await publisher.assertQueue(queue, {
      durable: true,
      arguments: quorum ? { 'x-queue-type': 'quorum' } : { 'x-max-priority': 2 },
    });
    for (let i = 0; i < options.jobs; i += options.batch) {
      const n = Math.min(options.batch, options.jobs - i);
      const now = Date.now();
      for (let k = 0; k < n; k++) {
        const envelope = createEnvelope('bench_job', { i: i + k });
        const properties: Options.Publish = {
          persistent: true,
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          messageId: envelope.id,
          timestamp: Math.floor(now / 1000),
          headers: {},
          mandatory: true,
        };
        if (!quorum) properties.priority = 1;
        const flushed = publisher.publish(
          '',
          queue,
          Buffer.from(encodeEnvelope(envelope), 'utf8'),
          properties,
        );
        if (!flushed) await new Promise((resolve) => publisher.once('drain', resolve));
      }
      await publisher.waitForConfirms();
    }
    const enqueuePerSec = perSecond(options.jobs, t0);
    await publisher.close();

    let done = 0;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const t1 = performance.now();
    const consumer = await connection.createConfirmChannel();
    await consumer.prefetch(options.concurrency);
    const { consumerTag } = await consumer.consume(
      queue,
      (message) => {
        if (!message) return;
        void rawHandler(JSON.parse(message.content.toString('utf8'))).then(() => {
          consumer.ack(message);
          if (++done === options.jobs) finish();
        });
      },
      { noAck: false },
    );
    await finished;
    const processPerSec = perSecond(options.jobs, t1);
    await consumer.cancel(consumerTag);
    await consumer.deleteQueue(queue);
    await consumer.close();
    return { enqueuePerSec, processPerSec };
  } finally {
    await connection.close().catch(() => {});
  }
}
