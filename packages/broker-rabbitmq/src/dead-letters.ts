import { type DeadLetter, type DeadLetterStore, decodeEnvelope, withAttempt } from '@polyqueue/core';
import type { GetMessage } from 'amqplib';
import type { QueueNames } from './config';
import type { AmqpConnection } from './connection';
import { DELIVER_AT_HEADER } from './delay';
import { ATTEMPT_HEADER, headersOf, propertiesOf, publishRouted } from './publisher';

export const REASON_HEADER = 'x-polyqueue-reason';
export const DEAD_AT_HEADER = 'x-polyqueue-dead-at';
export const ID_HEADER = 'x-polyqueue-id';

/** The headers a dead letter carries in `polyqueue.Q.dead`, readable by any AMQP tool. */
export function deadLetterHeaders(id: string, reason: string, at: Date): Record<string, string> {
  return { [ID_HEADER]: id, [REASON_HEADER]: reason, [DEAD_AT_HEADER]: at.toISOString() };
}

/**
 * The dead letters of one queue, kept in the durable queue `polyqueue.Q.dead`. AMQP has no way
 * to read a queue without taking messages, so list() takes up to `limit` with basic.get
 * (manual ack) and gives them all back with one basic.nack(requeue): RabbitMQ puts requeued
 * messages back at their place, so the order stays oldest first, at the cost of the
 * `redelivered` flag. While a listing runs, those messages are invisible to another reader.
 */
export function createDeadLetterStore(
  connection: AmqpConnection,
  names: QueueNames,
  ensureTopology: () => Promise<void>,
): DeadLetterStore {
  return {
    async list(limit) {
      await ensureTopology();
      return connection.withChannel(async (channel) => {
        const letters: DeadLetter[] = [];
        for (let i = 0; i < limit; i++) {
          const message = await channel.get(names.dead, { noAck: false });
          if (!message) break;
          letters.push(toDeadLetter(message));
        }
        channel.nackAll(true);
        return letters;
      });
    },

    async redrive(ids) {
      await ensureTopology();
      const wanted = ids === 'all' ? undefined : new Set(ids);
      if (wanted && wanted.size === 0) return 0;
      return connection.withChannel(async (channel) => {
        // Only what was there at the start: a job failing again meanwhile is not picked up twice.
        const { messageCount } = await channel.checkQueue(names.dead);
        let moved = 0;
        for (let i = 0; i < messageCount; i++) {
          const message = await channel.get(names.dead, { noAck: false });
          if (!message) break;
          const id = idOf(message);
          if (wanted && !wanted.has(id)) continue; // given back by nackAll below
          const headers = headersOf(message);
          for (const name of [
            REASON_HEADER,
            DEAD_AT_HEADER,
            ID_HEADER,
            DELIVER_AT_HEADER,
            ...NATIVE_DEATH_HEADERS,
          ])
            delete headers[name];
          headers[ATTEMPT_HEADER] = 1;
          const body = Buffer.from(withAttempt(message.content.toString('utf8'), 1, id), 'utf8');
          const options = { ...propertiesOf(message.properties, headers), messageId: id };
          // Confirmed on the work queue before the dead letter goes: a crash here duplicates, never loses.
          await publishRouted(channel, { exchange: '', routingKey: names.work, body, options });
          channel.ack(message);
          moved++;
        }
        channel.nackAll(true);
        return moved;
      });
    },

    async purge() {
      await ensureTopology();
      return connection.withChannel(async (channel) => (await channel.purgeQueue(names.dead)).messageCount);
    },
  };
}

/** The id redrive() matches: the one recorded at dead-lettering, else the message or envelope id. */
function idOf(message: GetMessage): string {
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  const recorded = headers[ID_HEADER];
  if (typeof recorded === 'string' && recorded) return recorded;
  const messageId = message.properties.messageId;
  if (typeof messageId === 'string' && messageId) return messageId;
  const decoded = decodeEnvelope(message.content.toString('utf8'), `amqp-dead-${message.fields.deliveryTag}`);
  return decoded.ok ? decoded.envelope.id : `amqp-dead-${message.fields.deliveryTag}`;
}

function toDeadLetter(message: GetMessage): DeadLetter {
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  const body = message.content.toString('utf8');
  const reason = headers[REASON_HEADER];
  const deadAt = headers[DEAD_AT_HEADER];
  const timestamp = message.properties.timestamp;
  return {
    id: idOf(message),
    body,
    // A message dead-lettered by RabbitMQ itself (a foreign DLX policy) has only x-death.
    reason: typeof reason === 'string' ? reason : (nativeReason(headers) ?? 'unknown'),
    deadAt:
      typeof deadAt === 'string'
        ? deadAt
        : new Date(typeof timestamp === 'number' ? timestamp * 1000 : Date.now()).toISOString(),
  };
}

/**
 * Why RabbitMQ itself dead-lettered a message. The latest death is the one that brought it
 * here: `x-last-death-reason` (RabbitMQ 3.13+), else the first entry of `x-death` (newest
 * first). `x-first-death-reason` is only the last resort: a message that waited in a delay
 * tier already died once there (`expired`) before, say, its work queue's delivery limit.
 */
export function nativeReason(headers: Record<string, unknown>): string | undefined {
  const deaths = headers['x-death'];
  const latest = Array.isArray(deaths) ? (deaths[0] as Record<string, unknown> | undefined) : undefined;
  const reason = [headers['x-last-death-reason'], latest?.reason, headers['x-first-death-reason']].find(
    (r): r is string => typeof r === 'string' && r.length > 0,
  );
  if (!reason) return undefined;
  if (reason === 'delivery_limit') {
    return (
      'dead-lettered by RabbitMQ: delivery_limit (given back to the quorum queue more than ' +
      'AMQP_DELIVERY_LIMIT times: its consumers died or gave it back while handling it)'
    );
  }
  return `dead-lettered by RabbitMQ: ${reason}`;
}

/** The headers RabbitMQ adds when it dead-letters a message; a redriven message starts clean. */
const NATIVE_DEATH_HEADERS = [
  'x-death',
  'x-first-death-reason',
  'x-first-death-queue',
  'x-first-death-exchange',
  'x-last-death-reason',
  'x-last-death-queue',
  'x-last-death-exchange',
];
