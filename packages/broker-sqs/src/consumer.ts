/**
 * The receive loop behind consume() and subscribe(), and the Delivery it hands out.
 *
 * - Long polling (SQS_WAIT_TIME_S) asks for no more messages than there are free handler
 *   slots, at most 10, so a message is never held invisible while it waits for a slot.
 * - Each receive sets the visibility timeout (SQS_VISIBILITY_TIMEOUT_S): the lease. A consumer
 *   that dies leaves its messages invisible until it runs out, then SQS hands them out again.
 * - ack() deletes, batched; extend(ms) and retry(ms) are ChangeMessageVisibility (retry: see
 *   retryPlan(), which also covers delays beyond SQS's 12 hours); deadLetter() sends the body
 *   to Q-dead with its reason, then deletes.
 * - The loop is core's runPullLoop: a failed receive reports the outage through
 *   onConnectionChange and is retried after core's backoff; a queue that has vanished (a local
 *   server restarted in memory) is created again.
 */
import { randomUUID } from 'node:crypto';
import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import {
  AlreadySettledError,
  type BackoffOptions,
  type ConsumeOptions,
  type Delivery,
  type DeliveryHandler,
  type Logger,
  runPullLoop,
  type SettleOutcome,
  withAttempt,
} from '@polyqueue/core';
import type { SqsConfig } from './config';
import {
  ATTR,
  deliveryAttempt,
  MAX_VISIBILITY_S,
  notBeforeOf,
  type OutgoingSqsMessage,
  SYSTEM_ATTRIBUTES,
  sendMessages,
  truncateReason,
} from './messages';
import { isQueueMissing, type QueueDirectory, type QueuePair } from './queues';

/** What the loop and its deliveries need from the broker. */
export interface ConsumerContext {
  client: SQSClient;
  config: SqsConfig;
  logger: Logger;
  directory: QueueDirectory;
  deleteMessage(queueUrl: string, receiptHandle: string): Promise<void>;
  changeVisibility(queueUrl: string, receiptHandle: string, seconds: number): Promise<void>;
}

export interface QueueNamePair {
  main: string;
  dead: string;
}

/**
 * The pause after `failures` receives failed in a row: core's full-jitter backoff from 250 ms
 * up to 5 s, so a restarted endpoint is found again within seconds without a burst of retries.
 */
const RECEIVE_BACKOFF: BackoffOptions = { baseMs: 250, maxMs: 5_000 };

/** core's pull loop, with a long-polling receive as its fetch (SQS waits, so no idle pause). */
export async function runConsumer(
  ctx: ConsumerContext,
  names: QueueNamePair,
  handler: DeliveryHandler,
  options: ConsumeOptions,
): Promise<void> {
  const { signal } = options;
  let ready = false;
  const groups = ctx.config.SQS_FIFO ? new GroupOrder(handler) : undefined;
  await runPullLoop({
    signal,
    concurrency: options.concurrency,
    handler: groups ? groups.handler : handler,
    logger: ctx.logger,
    what: `sqs queue ${names.main}`,
    backoff: RECEIVE_BACKOFF,
    ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {}),
    fetch: async (free) => {
      let pair: QueuePair;
      let messages: Message[];
      try {
        pair = await ctx.directory.pair(names);
        if (!ready) {
          ready = true;
          options.onReady?.();
        }
        const result = await ctx.client.send(
          new ReceiveMessageCommand({
            QueueUrl: pair.url,
            MaxNumberOfMessages: Math.min(10, free),
            WaitTimeSeconds: ctx.config.SQS_WAIT_TIME_S,
            VisibilityTimeout: ctx.config.SQS_VISIBILITY_TIMEOUT_S,
            MessageSystemAttributeNames: SYSTEM_ATTRIBUTES,
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: signal },
        );
        messages = result.Messages ?? [];
      } catch (error) {
        // Not an outage: a local server restarted in memory lost the queue; create it again.
        if (signal.aborted || !isQueueMissing(error)) throw error;
        ctx.directory.forget(names);
        ctx.logger.warn({ queue: names.main }, 'SQS queue is gone; creating it again');
        return [];
      }
      return deliveriesOf(ctx, pair, messages, groups);
    },
  });
}

/**
 * FIFO: one receive may return several messages of one message group, in order, and SQS hands
 * out no more of that group until they are gone. Run in parallel they would overlap and could
 * finish out of order; so a group's messages run one after another, each once its predecessor
 * has settled. Different groups still run side by side. A message waiting for its turn holds a
 * handler slot (it was received for one) and its visibility runs meanwhile, as it would in a
 * single-threaded consumer.
 */
class GroupOrder {
  readonly #groupOf = new WeakMap<Delivery, string>();
  /** The last handler run queued per group; removed once it is the group's last and has ended. */
  readonly #tails = new Map<string, Promise<void>>();

  constructor(private readonly inner: DeliveryHandler) {}

  /** Called for each delivery, in the order SQS returned the messages. */
  note(delivery: Delivery, message: Message): void {
    const group = message.Attributes?.MessageGroupId;
    if (group !== undefined) this.#groupOf.set(delivery, group);
  }

  readonly handler: DeliveryHandler = (delivery) => {
    const group = this.#groupOf.get(delivery);
    if (group === undefined) return this.inner(delivery);
    const previous = this.#tails.get(group);
    const run = previous ? previous.then(() => this.inner(delivery)) : this.inner(delivery);
    const tail = run.catch(() => {});
    this.#tails.set(group, tail);
    void tail.then(() => {
      if (this.#tails.get(group) === tail) this.#tails.delete(group);
    });
    return run;
  };
}

/** The messages that are due, as deliveries; the others are sent on for another delay hop. */
function deliveriesOf(
  ctx: ConsumerContext,
  pair: QueuePair,
  messages: readonly Message[],
  groups: GroupOrder | undefined,
): Delivery[] {
  const receivedAt = Date.now();
  const deliveries: Delivery[] = [];
  for (const message of messages) {
    const notBefore = notBeforeOf(message);
    if (notBefore !== undefined && notBefore > receivedAt) {
      // Longer than SQS's 15-minute delay: send it on for another hop; not an attempt.
      void reschedule(ctx, pair, message, notBefore).catch((error) =>
        ctx.logger.warn(
          { err: error, messageId: message.MessageId },
          'could not re-schedule a delayed message',
        ),
      );
      continue;
    }
    const delivery = createDelivery(ctx, pair, message, receivedAt);
    groups?.note(delivery, message);
    deliveries.push(delivery);
  }
  return deliveries;
}

async function reschedule(
  ctx: ConsumerContext,
  pair: QueuePair,
  message: Message,
  notBefore: number,
): Promise<void> {
  const copy: OutgoingSqsMessage = {
    body: message.Body ?? '',
    notBefore,
    attempt: deliveryAttempt(message),
    attributes: carriedAttributes(message),
  };
  await sendMessages(ctx.client, pair.url, [copy], false);
  await ctx.deleteMessage(pair.url, message.ReceiptHandle!);
}

/** The string attributes a copy keeps (dead-letter details), minus the ones recomputed per send. */
function carriedAttributes(message: Message): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    if (name === ATTR.attempt || name === ATTR.notBefore || value.StringValue === undefined) continue;
    kept[name] = value.StringValue;
  }
  return kept;
}

function createDelivery(
  ctx: ConsumerContext,
  pair: QueuePair,
  message: Message,
  receivedAt: number,
): Delivery {
  const messageId = stringOr(
    message.MessageAttributes?.[ATTR.messageId]?.StringValue,
    message.MessageId ?? randomUUID(),
  );
  const body = message.Body ?? '';
  const receipt = message.ReceiptHandle!;
  const attempt = deliveryAttempt(message);
  const fifo = ctx.config.SQS_FIFO;
  let settled = false;
  const settle = (outcome: SettleOutcome) => {
    if (settled) throw new AlreadySettledError(messageId, outcome);
    settled = true;
  };

  return {
    messageId,
    body,
    attempt,
    async ack() {
      settle('ack');
      await ctx.deleteMessage(pair.url, receipt);
    },
    async retry(delayMs) {
      settle('retry');
      await retryMessage(ctx, pair, message, {
        messageId,
        attempt,
        receivedAt,
        delayMs: Math.max(0, delayMs),
        fifo,
      });
    },
    async deadLetter(reason) {
      settle('deadLetter');
      const dead: OutgoingSqsMessage = {
        body,
        attributes: {
          ...carriedAttributes(message),
          [ATTR.reason]: truncateReason(reason),
          [ATTR.deadAt]: new Date().toISOString(),
          [ATTR.messageId]: messageId,
          ...(message.Attributes?.MessageGroupId ? { [ATTR.group]: message.Attributes.MessageGroupId } : {}),
        },
        // FIFO dead letters: a group of their own each, so one never blocks another.
        groupId: randomUUID(),
        dedupId: randomUUID(),
      };
      await sendMessages(ctx.client, pair.deadUrl, [dead], fifo);
      await ctx.deleteMessage(pair.url, receipt);
    },
    async extend(ms) {
      if (settled) return; // a heartbeat racing the ack
      const seconds = Math.min(Math.ceil(Math.max(0, ms) / 1000), maxVisibility(receivedAt));
      await ctx.changeVisibility(pair.url, receipt, seconds);
    },
  };
}

/** SQS counts the 12-hour visibility limit from the receive; keep a margin for clock and latency. */
function maxVisibility(receivedAt: number, now = Date.now()): number {
  return Math.max(0, MAX_VISIBILITY_S - Math.ceil((now - receivedAt) / 1000) - 10);
}

/** How retry(delayMs) is carried out: hide the message itself, or (standard, too long) send a copy. */
export type RetryPlan = { kind: 'visibility'; seconds: number } | { kind: 'copy' };

/**
 * retry(delayMs) is ChangeMessageVisibility on the message itself, to ceil(delayMs / 1000)
 * seconds: visibility is whole seconds, and rounding up is what keeps the job from coming back
 * before its delay. One request; the same message comes back with its receive count (so the
 * attempt) one higher; on FIFO its message group waits behind it, which keeps per-key order.
 *
 * SQS allows 12 hours of visibility counted from the receive. A longer delay on a standard
 * queue falls back to a copy carrying attempt + 1 and a not-before deadline (15-minute
 * DelaySeconds hops, as for delayed publish), then the original is deleted: two requests. FIFO
 * cannot delay a copy (and a copy would lose its place in the group), so there the delay is cut
 * to what is left of the 12 hours.
 */
export function retryPlan(delayMs: number, receivedAt: number, fifo: boolean, now = Date.now()): RetryPlan {
  const seconds = Math.ceil(Math.max(0, delayMs) / 1000);
  const room = maxVisibility(receivedAt, now);
  if (seconds <= room) return { kind: 'visibility', seconds };
  return fifo ? { kind: 'visibility', seconds: room } : { kind: 'copy' };
}

async function retryMessage(
  ctx: ConsumerContext,
  pair: QueuePair,
  message: Message,
  retry: { messageId: string; attempt: number; receivedAt: number; delayMs: number; fifo: boolean },
): Promise<void> {
  const receipt = message.ReceiptHandle!;
  const plan = retryPlan(retry.delayMs, retry.receivedAt, retry.fifo);
  if (plan.kind === 'visibility') {
    await ctx.changeVisibility(pair.url, receipt, plan.seconds);
    return;
  }
  // Send first, then delete: a crash in between leaves a duplicate, never a loss.
  const copy: OutgoingSqsMessage = {
    body: withAttempt(message.Body ?? '', retry.attempt + 1, retry.messageId),
    delayMs: retry.delayMs,
    attempt: retry.attempt + 1,
    attributes: { ...carriedAttributes(message), [ATTR.messageId]: retry.messageId },
  };
  await sendMessages(ctx.client, pair.url, [copy], false);
  await ctx.deleteMessage(pair.url, receipt);
}

function stringOr(value: string | undefined, fallback: string): string {
  return value !== undefined && value.length > 0 ? value : fallback;
}
