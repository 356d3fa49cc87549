import {
  AlreadySettledError,
  attemptOf,
  type Delivery,
  type SettleOutcome,
  withAttempt,
} from '@polyqueue/core';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { AckCoalescer } from './ack-coalescer';
import type { QueueNames } from './config';
import { deadLetterHeaders } from './dead-letters';
import { DELIVER_AT_HEADER } from './delay';
import { ATTEMPT_HEADER, headersOf, messageIdOf, propertiesOf, publishRouted, routeFor } from './publisher';

/**
 * The attempt a received message is on. The driver writes it in the `x-polyqueue-attempt`
 * header on publish, retry and redrive, so reading it costs no parse of the body (the worker
 * runtime decodes the body once itself). A foreign producer's message has no such header: its
 * body says (an envelope's `attempt`), or it is the first.
 */
export function attemptFrom(headers: Record<string, unknown> | undefined, body: string): number {
  const recorded = headers?.[ATTEMPT_HEADER];
  if (typeof recorded === 'number' && Number.isInteger(recorded) && recorded >= 1) return recorded;
  return attemptOf(body);
}

/**
 * One received message whose outcomes use the channel it arrived on. A class, not a set of
 * closures: one object per message, its methods shared on the prototype, because the consume
 * path runs once per message and its allocations showed in profiles.
 *
 * retry() and deadLetter() publish the new message on that confirm channel and ack the
 * original only once the broker confirmed it, so a crash between the two duplicates a message
 * but never loses one.
 */
export class RabbitDelivery implements Delivery {
  readonly messageId: string;
  readonly body: string;
  readonly attempt: number;
  /** True once the original is acked; the consumer requeues a delivery left without it. */
  acked = false;
  /** Set by the first of ack, retry and deadLetter: a second outcome is refused. */
  private claimed = false;

  constructor(
    private readonly channel: ConfirmChannel,
    private readonly acks: AckCoalescer,
    private readonly message: ConsumeMessage,
    private readonly names: QueueNames,
  ) {
    this.messageId = messageIdOf(message);
    this.body = message.content.toString('utf8');
    this.attempt = attemptFrom(message.properties.headers, this.body);
  }

  async ack(): Promise<void> {
    this.claim('ack');
    this.acks.ack(this.message);
    this.acked = true;
  }

  async retry(delayMs: number): Promise<void> {
    this.claim('retry');
    const { message, messageId } = this;
    const next = this.attempt + 1;
    const route = routeFor(this.names, delayMs, Date.now());
    const body = Buffer.from(withAttempt(this.body, next, messageId), 'utf8');
    const headers: Record<string, unknown> = {
      ...headersOf(message),
      ...route.headers,
      [ATTEMPT_HEADER]: next,
    };
    if (route.headers[DELIVER_AT_HEADER] === undefined) delete headers[DELIVER_AT_HEADER];
    const options = { ...propertiesOf(message.properties, headers), messageId };
    await publishRouted(this.channel, { exchange: '', routingKey: route.routingKey, body, options });
    this.acks.ack(message);
    this.acked = true;
  }

  async deadLetter(reason: string): Promise<void> {
    this.claim('deadLetter');
    const { message, messageId } = this;
    const headers = { ...headersOf(message), ...deadLetterHeaders(messageId, reason, new Date()) };
    delete headers[DELIVER_AT_HEADER];
    const options = { ...propertiesOf(message.properties, headers), messageId };
    await publishRouted(this.channel, {
      exchange: '',
      routingKey: this.names.dead,
      body: message.content,
      options,
    });
    this.acks.ack(message);
    this.acked = true;
  }

  async extend(_ms: number): Promise<void> {
    // RabbitMQ holds an unacked message for as long as the channel lives: nothing to renew.
  }

  private claim(outcome: SettleOutcome): void {
    if (this.claimed) throw new AlreadySettledError(this.messageId, outcome);
    this.claimed = true;
  }
}
