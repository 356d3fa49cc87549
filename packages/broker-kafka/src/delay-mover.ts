import type { Logger } from '@polyqueue/core';
import type { EachBatchPayload, Kafka, Producer } from 'kafkajs';
import { copyHeaders, HEADER, headerText } from './client';
import { type SessionSettings, SupervisedConsumer } from './supervised-consumer';

/**
 * Delayed delivery for Kafka, which has none: delayed publishes and retries go to the retry
 * topic (`polyqueue.Q.retry`) with a due-time header. This mover reads that topic in its own
 * consumer group, republishes each message to the main topic once it is due, and commits after
 * the republish (a crash in between publishes it twice: at-least-once).
 *
 * A message that is not due yet pauses its partition until it is (pause + timer + resume); it is
 * not resolved, so the fetch after the resume starts at it again. The price of one log per
 * partition: a message waits behind an earlier one of its retry partition with a later due time,
 * so delivery is never early but may be late when delays on one partition differ.
 *
 * Every consume() of a queue runs a mover, so delays move while at least one worker of the
 * queue runs; with several workers the group splits the retry partitions between them.
 */

export interface DelayMoverOptions {
  kafka: Kafka;
  producer: () => Promise<Producer>;
  retryTopic: string;
  mainTopic: string;
  groupId: string;
  session: SessionSettings;
  logger: Logger;
  onConnectionChange?: (connected: boolean, error?: Error) => void;
}

export class DelayMover {
  private readonly consumer: SupervisedConsumer;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: DelayMoverOptions) {
    this.consumer = new SupervisedConsumer({
      kafka: options.kafka,
      groupId: options.groupId,
      topic: options.retryTopic,
      fromBeginning: true,
      session: options.session,
      // A resumed partition is fetched only when the fetch in flight returns: a short poll keeps
      // delays from being late by up to a whole heartbeat interval (costs a few idle fetches/s).
      maxWaitTimeInMs: 250,
      logger: options.logger,
      run: {
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 4,
        eachBatch: (p) => this.onBatch(p),
      },
      ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {}),
    });
  }

  get joined(): Promise<void> {
    return this.consumer.joined;
  }

  start(): Promise<void> {
    return this.consumer.start();
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.consumer.stop();
  }

  private async onBatch({
    batch,
    resolveOffset,
    pause,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    const due = [];
    let waitMs = 0;
    for (const message of batch.messages) {
      const dueAt = Number(headerText(message, HEADER.dueAt) ?? 0);
      const wait = dueAt - Date.now();
      if (wait > 0) {
        waitMs = wait;
        break;
      }
      due.push(message);
    }
    if (due.length > 0 && isRunning() && !isStale()) {
      const producer = await this.options.producer();
      await producer.send({
        topic: this.options.mainTopic,
        acks: -1,
        messages: due.map((message) => ({
          key: message.key,
          value: message.value,
          headers: copyHeaders(message, [HEADER.dueAt]),
        })),
      });
      const last = due[due.length - 1]!.offset;
      resolveOffset(last);
      await this.consumer.commit(batch.partition, Number(last) + 1);
    }
    if (waitMs > 0) {
      // Not resolved, so after the resume the fetch starts at this message again.
      const resume = pause();
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          resume();
        },
        Math.min(waitMs, 2 ** 31 - 1),
      );
      this.timers.add(timer);
    }
  }
}
