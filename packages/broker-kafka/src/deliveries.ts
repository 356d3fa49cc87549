import {
  AlreadySettledError,
  attemptOf,
  type Delivery,
  type SettleOutcome,
  withAttempt,
} from '@polyqueue/core';
import type { Producer } from 'kafkajs';
import { HEADER } from './client';
import { deadLetterHeaders } from './dead-letters';
import type { ConsumedRecord, RecordControl } from './partition-worker';

/**
 * What ack / retry / deadLetter do on Kafka, for queue messages and for pub/sub events.
 *
 * Every outcome ends in control.settle(), which records it locally and returns at once: the
 * offset commit follows, coalesced per partition (partition-worker.ts). A crash before that
 * commit lands redelivers the message, so the outcomes are at-least-once. retry() and
 * deadLetter() first publish to the retry or dead topic with acks=all, and settle only once
 * Kafka has acknowledged that publish: it is the durable part of those outcomes, and a crash
 * between the two only duplicates the message.
 *
 * Classes rather than objects of closures: one delivery is made per message.
 */

/** Where a queue's deliveries publish their outcomes. */
export interface QueueOutcomeTopics {
  retry: string;
  dead: string;
}

abstract class KafkaDelivery implements Delivery {
  readonly messageId: string;
  readonly body: string;
  /** Set by the first of ack, retry and deadLetter, before it publishes anything. */
  private claimed = false;

  constructor(
    protected readonly producer: () => Promise<Producer>,
    protected readonly record: ConsumedRecord,
    protected readonly control: RecordControl,
  ) {
    this.messageId = `${record.topic}/${record.partition}/${record.offset}`;
    this.body = record.message.value?.toString() ?? '';
  }

  abstract readonly attempt: number;
  abstract retry(delayMs: number): Promise<void>;
  abstract deadLetter(reason: string): Promise<void>;

  async ack(): Promise<void> {
    this.claim('ack');
    this.control.settle('ack');
  }

  /** Kafka has no lease: a consumer keeps its partitions as long as it heartbeats. */
  async extend(): Promise<void> {}

  protected async publishDead(topic: string, reason: string): Promise<void> {
    this.claim('deadLetter');
    await (await this.producer()).send({
      topic,
      acks: -1,
      messages: [
        {
          key: this.record.message.key,
          value: this.body,
          headers: deadLetterHeaders(this.messageId, reason),
        },
      ],
    });
    this.control.settle('deadLetter');
  }

  /**
   * Refuses a second outcome before it publishes a second retry or dead-letter copy (the
   * record's own check, in control.settle(), only runs after that publish).
   */
  protected claim(outcome: SettleOutcome): void {
    if (this.claimed) throw new AlreadySettledError(this.messageId, outcome);
    this.claimed = true;
  }
}

/** A message of a queue: retry(delay) goes through the queue's retry topic with attempt + 1. */
export class QueueDelivery extends KafkaDelivery {
  private parsedAttempt: number | undefined;

  /** The attempt lives in the body (retry() rewrites it there): the runtime reads its envelope. */
  get attemptInEnvelope(): boolean {
    return true;
  }

  constructor(
    producer: () => Promise<Producer>,
    private readonly topics: QueueOutcomeTopics,
    record: ConsumedRecord,
    control: RecordControl,
  ) {
    super(producer, record, control);
  }

  /** Read from the body on first use (a JSON parse). */
  get attempt(): number {
    this.parsedAttempt ??= attemptOf(this.body);
    return this.parsedAttempt;
  }

  async retry(delayMs: number): Promise<void> {
    this.claim('retry');
    const value = withAttempt(this.body, this.attempt + 1, this.messageId);
    const headers = { [HEADER.dueAt]: String(Date.now() + Math.max(0, delayMs)) };
    await (await this.producer()).send({
      topic: this.topics.retry,
      acks: -1,
      messages: [{ key: this.record.message.key, value, headers }],
    });
    this.control.settle('retry');
  }

  deadLetter(reason: string): Promise<void> {
    return this.publishDead(this.topics.dead, reason);
  }
}

/**
 * An event of a subscriber group: retry(delay) runs it again in this process, holding its offset
 * (a crash meanwhile redelivers it from attempt 1); deadLetter goes to the group's dead topic.
 */
export class EventDelivery extends KafkaDelivery {
  readonly attempt: number;

  constructor(
    producer: () => Promise<Producer>,
    private readonly deadTopic: string,
    record: ConsumedRecord,
    attempt: number | undefined,
    control: RecordControl,
  ) {
    super(producer, record, control);
    this.attempt = attempt ?? attemptOf(this.body);
  }

  async retry(delayMs: number): Promise<void> {
    this.claim('retry');
    this.control.again(delayMs, this.attempt + 1);
  }

  deadLetter(reason: string): Promise<void> {
    return this.publishDead(this.deadTopic, reason);
  }
}
