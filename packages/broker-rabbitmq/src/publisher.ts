import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Message, MessageProperties, Options } from 'amqplib';
import type { QueueNames } from './config';
import type { AmqpConnection } from './connection';
import { DELIVER_AT_HEADER, republishHeaders, tierIndexFor } from './delay';

/**
 * The attempt a message is on, written by the driver on publish, retry and redrive so a
 * consumer need not parse the body to learn it; always equal to the body's `attempt`.
 */
export const ATTEMPT_HEADER = 'x-polyqueue-attempt';

/**
 * Records an envelope's attempt in `headers` (which it returns). An attempt that is not a
 * positive integer is left out: the consumer then reads the body, which says 1 for it as well.
 */
export function recordAttempt(headers: Record<string, unknown>, attempt: unknown): Record<string, unknown> {
  if (typeof attempt === 'number' && Number.isInteger(attempt) && attempt >= 1)
    headers[ATTEMPT_HEADER] = attempt;
  return headers;
}

/** One message ready for the wire: where it goes and with which properties. */
export interface Outgoing {
  exchange: string;
  routingKey: string;
  body: Buffer;
  options: Options.Publish;
}

/**
 * Where a message for `names` goes: straight to the work queue, or, when it must wait, to the
 * first tier of its hop chain with its due time in a header (see delay.ts).
 */
export function routeFor(
  names: QueueNames,
  delayMs: number | undefined,
  now: number,
): { routingKey: string; headers: Record<string, unknown> } {
  if (delayMs === undefined || delayMs <= 0) return { routingKey: names.work, headers: {} };
  const deliverAt = now + Math.ceil(delayMs);
  return { routingKey: names.tiers[tierIndexFor(delayMs)]!, headers: { [DELIVER_AT_HEADER]: deliverAt } };
}

/** Persistent JSON with the message id set: what every polyqueue message carries. */
export function baseProperties(messageId: string, now: number): Options.Publish {
  return {
    persistent: true,
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    messageId,
    timestamp: Math.floor(now / 1000),
  };
}

/**
 * The publish options that send a received message on unchanged (a delay hop, a retry, a dead
 * letter). Dropped on purpose: `expiration` (a per-message TTL would expire it on the way) and
 * `userId` (the broker checks it against the publishing user).
 */
export function propertiesOf(
  properties: MessageProperties,
  headers: Record<string, unknown>,
): Options.Publish {
  const options: Options.Publish = { persistent: true, headers };
  if (properties.contentType !== undefined) options.contentType = properties.contentType;
  if (properties.contentEncoding !== undefined) options.contentEncoding = properties.contentEncoding;
  if (properties.priority !== undefined) options.priority = properties.priority;
  if (properties.correlationId !== undefined) options.correlationId = properties.correlationId;
  if (properties.replyTo !== undefined) options.replyTo = properties.replyTo;
  if (properties.messageId !== undefined) options.messageId = properties.messageId;
  if (properties.timestamp !== undefined) options.timestamp = properties.timestamp;
  if (properties.type !== undefined) options.type = properties.type;
  if (properties.appId !== undefined) options.appId = properties.appId;
  return options;
}

/**
 * The id of a received message: its AMQP message-id (polyqueue sets it to the envelope id), or
 * for a foreign producer that set none, a fresh one. RabbitMQ assigns no id of its own; a hash
 * of the body would merge two identical jobs sent on purpose, so a foreign message without a
 * message-id that is redelivered after a crash is, to the idempotency store, a new job. retry()
 * writes the id into the body, so later attempts keep it.
 */
export function messageIdOf(message: Message): string {
  const id = message.properties.messageId;
  return typeof id === 'string' && id.length > 0 ? id : `amqp-${randomUUID()}`;
}

export function headersOf(message: Message): Record<string, unknown> {
  return republishHeaders(message.properties.headers as Record<string, unknown> | undefined);
}

/**
 * Publishes on a confirm channel and resolves when the broker has confirmed every message (for
 * a persistent message to a durable queue: written to disk, or to a quorum's majority). Waits
 * for the socket to drain when amqplib says its buffer is full, so a large batch does not
 * pile up in memory.
 *
 * Messages sent with `mandatory` that no queue took (the queue was deleted behind the driver's
 * back) come back with basic.return, which RabbitMQ sends before the confirm; they are
 * returned to the caller, which declares the queue again and resends them, instead of being
 * confirmed into the void.
 */
export async function publishAll(
  channel: ConfirmChannel,
  messages: readonly Outgoing[],
): Promise<Outgoing[]> {
  const returned = new Set<Outgoing>();
  const onReturn = (message: Message) => {
    const match = messages.find(
      (m) =>
        !returned.has(m) &&
        m.options.mandatory &&
        m.routingKey === message.fields.routingKey &&
        m.options.messageId === message.properties.messageId,
    );
    if (match) returned.add(match);
  };
  channel.on('return', onReturn);
  try {
    const confirms: Promise<void>[] = [];
    for (const message of messages) {
      let flushed = true;
      confirms.push(
        new Promise<void>((resolve, reject) => {
          try {
            flushed = channel.publish(
              message.exchange,
              message.routingKey,
              message.body,
              message.options,
              (error) => {
                if (error) reject(error instanceof Error ? error : new Error(String(error)));
                else resolve();
              },
            );
          } catch (error) {
            reject(error); // the channel is already closed
          }
        }),
      );
      if (!flushed) await waitForDrain(channel);
    }
    const results = await Promise.allSettled(confirms);
    const failed = results.find((result) => result.status === 'rejected');
    if (failed)
      throw new Error(
        `RabbitMQ did not confirm the publish: ${String(failed.reason?.message ?? failed.reason)}`,
      );
    return messages.filter((message) => returned.has(message));
  } finally {
    channel.off('return', onReturn);
  }
}

/** Like publishAll, for a message that must reach its queue now (retry, dead letter, hop). */
export async function publishRouted(channel: ConfirmChannel, message: Outgoing): Promise<void> {
  const unroutable = await publishAll(channel, [
    { ...message, options: { ...message.options, mandatory: true } },
  ]);
  if (unroutable.length > 0)
    throw new Error(`RabbitMQ queue "${message.routingKey}" does not exist (deleted?)`);
}

function waitForDrain(channel: ConfirmChannel): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      channel.off('drain', done);
      channel.off('close', done);
      resolve();
    };
    channel.once('drain', done);
    channel.once('close', done);
  });
}

/**
 * The confirm channel publish() shares, opened on first use and again after it or its
 * connection closed. Confirms are per channel, so one channel serves concurrent batches.
 */
export class SharedPublisher {
  private channel: Promise<ConfirmChannel> | undefined;

  constructor(private readonly connection: AmqpConnection) {}

  /** Publishes and returns the mandatory messages no queue took. */
  async publish(messages: readonly Outgoing[]): Promise<Outgoing[]> {
    return publishAll(await this.get(), messages);
  }

  async close(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await (await channel.catch(() => undefined))?.close().catch(() => {});
  }

  private get(): Promise<ConfirmChannel> {
    if (!this.channel) {
      const opening = this.connection.confirmChannel();
      this.channel = opening;
      opening.then(
        (channel) =>
          channel.on('close', () => {
            if (this.channel === opening) this.channel = undefined;
          }),
        () => {
          if (this.channel === opening) this.channel = undefined;
        },
      );
    }
    return this.channel;
  }
}
