/**
 * What the rabbitmq baselines (amqp-raw.ts, rabbitmq-best.ts) share around their loops: a
 * connection and a fresh queue per run declared as the driver's topology.ts declares its work
 * queue (durable, x-max-priority 2, or a quorum queue without priority with
 * AMQP_QUEUE_TYPE=quorum), one persistent message's publish, and the consuming run with its
 * clean-up. Each baseline keeps its own publish window and its own acks.
 */
import { randomUUID } from 'node:crypto';
import { type Envelope, encodeEnvelope } from '@polyqueue/core';
import amqp, { type Channel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib';
import { perSecond } from '../measure';
import type { BaselineOptions } from './index';

export interface AmqpRun {
  /** A confirm channel on which the run's queue is declared. */
  declare(): Promise<ConfirmChannel>;
  /**
   * Publishes `envelope` persistent and mandatory on the default exchange (priority 1 unless
   * quorum), with `extra` properties, and waits for the socket to drain when it is full.
   */
  publish(
    channel: ConfirmChannel,
    envelope: Envelope,
    extra?: Options.Publish,
    confirmed?: (error: unknown) => void,
  ): Promise<void>;
  /**
   * Consumes the queue with manual acks on a new channel (a confirm channel if `confirm`) with
   * `prefetch`, until `finished`; then cancels, deletes the queue and closes the channel.
   * Resolves with the jobs per second from the channel's opening to `finished`.
   */
  consume(
    settings: { confirm: boolean; prefetch: number },
    onMessage: (channel: Channel, message: ConsumeMessage) => void,
    finished: Promise<void>,
  ): Promise<number>;
  close(): Promise<void>;
}

export async function amqpRun(options: BaselineOptions, name: 'raw' | 'best'): Promise<AmqpRun> {
  const url = options.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const quorum = options.env.AMQP_QUEUE_TYPE === 'quorum';
  const connection = await amqp.connect(url);
  const queue = `${name}.bench.${randomUUID()}`;
  return {
    async declare() {
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue(queue, {
        durable: true,
        arguments: quorum ? { 'x-queue-type': 'quorum' } : { 'x-max-priority': 2 },
      });
      return channel;
    },
    async publish(channel, envelope, extra, confirmed) {
      const properties: Options.Publish = {
        persistent: true,
        contentType: 'application/json',
        messageId: envelope.id,
        mandatory: true,
        ...extra,
      };
      if (!quorum) properties.priority = 1;
      const body = Buffer.from(encodeEnvelope(envelope), 'utf8');
      const flushed = publishOn(channel, queue, body, properties, confirmed);
      if (!flushed) await new Promise((resolve) => channel.once('drain', resolve));
    },
    async consume({ confirm, prefetch }, onMessage, finished) {
      const t1 = performance.now();
      const channel = confirm ? await connection.createConfirmChannel() : await connection.createChannel();
      await channel.prefetch(prefetch);
      const { consumerTag } = await channel.consume(
        queue,
        (message) => {
          if (message) onMessage(channel, message);
        },
        { noAck: false },
      );
      await finished;
      const processPerSec = perSecond(options.jobs, t1);
      await channel.cancel(consumerTag);
      await channel.deleteQueue(queue);
      await channel.close();
      return processPerSec;
    },
    async close() {
      await connection.close().catch(() => {});
    },
  };
}

/** A publish with the confirm callback only when there is one, as each baseline did. */
function publishOn(
  channel: ConfirmChannel,
  queue: string,
  body: Buffer,
  properties: Options.Publish,
  confirmed?: (error: unknown) => void,
): boolean {
  return confirmed
    ? channel.publish('', queue, body, properties, confirmed)
    : channel.publish('', queue, body, properties);
}
