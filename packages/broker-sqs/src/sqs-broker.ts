/**
 * Amazon SQS (or an SQS-compatible server such as ElasticMQ) through @aws-sdk/client-sqs.
 *
 * Guarantees: at-least-once. A received message is invisible for the visibility timeout (the
 * lease) and is deleted on ack; if the worker dies, SQS hands it out again when the timeout
 * runs out. Standard queues may, rarely, deliver a message twice even without a crash and keep
 * no order; FIFO queues (SQS_FIFO=true) keep order per key and drop a re-send of the same
 * idempotency key within 5 minutes. Ack durability 'on-resolve': ack() resolves once SQS has
 * answered the DeleteMessageBatch that carries it (acks settling together share one).
 *
 * Native: lease and extend() (visibility timeout, ChangeMessageVisibility), retry delay
 * (ChangeMessageVisibility on the message itself, whole seconds rounded up, up to SQS's 12 h
 * from the receive; a longer delay on a standard queue becomes a copy re-scheduled in 15-minute
 * hops, on FIFO it is cut to the 12 h), delayed publish on standard queues (DelaySeconds, up to
 * 15 min; longer delays are re-scheduled in 15-minute hops), dead letters (a second queue, plus
 * a RedrivePolicy so SQS itself parks a message received too often without a delete: crashes,
 * hangs and retries all count), per-key order on FIFO (MessageGroupId = key).
 * Emulated: pub/sub, as one queue per (topic, group) that publishEvent() finds with ListQueues
 * (SNS would be the AWS way; it is not part of this stack).
 * Not available: priority; delayed publish on FIFO queues (SQS allows only a queue-wide delay
 * there), so a FIFO broker reports delayedDelivery 'none' although retry delays are honoured.
 *
 * Names: queue Q is `<prefix>-Q`, dead letters `<prefix>-Q-dead` (`.fifo` suffixed on FIFO);
 * created on first use with VisibilityTimeout, 14-day retention and the RedrivePolicy; an
 * existing queue is used as it is.
 *
 * Connection: SQS_ENDPOINT (unset for AWS, http://127.0.0.1:9324 for ElasticMQ), AWS_REGION,
 * credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the SDK's default chain.
 * Options: SQS_FIFO, SQS_VISIBILITY_TIMEOUT_S (30), SQS_WAIT_TIME_S (20), SQS_MAX_RECEIVE_COUNT
 * (10; keep it above the worker's max attempts: each retry is a receive), POLYQUEUE_PREFIX. See docs/brokers/sqs.md.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  type Broker,
  type BrokerAdmin,
  type BrokerEvents,
  type Capabilities,
  type ConsumeOptions,
  type DeadLetterStore,
  type DeliveryHandler,
  type Envelope,
  encodeEnvelope,
  type Logger,
  type OutgoingMessage,
  type QueueStats,
} from '@polyqueue/core';
import { Batcher, batchOutcomes, entryId } from './batcher';
import { createSqsClient, type SqsConfig } from './config';
import { type ConsumerContext, type QueueNamePair, runConsumer } from './consumer';
import { SqsDeadLetters } from './dead-letters';
import { type OutgoingSqsMessage, sendMessages } from './messages';
import { isQueueMissing, QueueDirectory, QueueNames } from './queues';

export function sqsCapabilities(fifo: boolean): Capabilities {
  return {
    delayedDelivery: fifo ? 'none' : 'native',
    priority: 'none',
    redeliveryAfterCrash: 'lease',
    ordering: fifo ? 'per-key' : 'none',
    pubsub: 'emulated',
    leaseExtension: true,
    delivery: 'at-least-once',
    // ack() resolves when SQS has answered the DeleteMessageBatch that holds it.
    ackDurable: 'on-resolve',
    crossProcess: true,
  };
}

interface Visibility {
  receipt: string;
  seconds: number;
}

export class SqsBroker implements Broker, BrokerEvents, BrokerAdmin {
  readonly name: string;
  readonly capabilities: Capabilities;
  /** The visibility timeout: a received message stays hidden this long without extend(). */
  readonly leaseMs: number;
  readonly #client: SQSClient;
  readonly #config: SqsConfig;
  readonly #names: QueueNames;
  readonly #directory: QueueDirectory;
  readonly #ctx: ConsumerContext;
  readonly #deletes = new Map<string, Batcher<string>>();
  readonly #visibility = new Map<string, Batcher<Visibility>>();
  readonly #closing = new AbortController();
  readonly #consumers = new Set<Promise<void>>();

  constructor(config: SqsConfig, logger: Logger) {
    this.#config = config;
    this.name = config.SQS_FIFO ? 'sqs (fifo)' : 'sqs';
    this.capabilities = sqsCapabilities(config.SQS_FIFO);
    this.leaseMs = config.SQS_VISIBILITY_TIMEOUT_S * 1000;
    this.#client = createSqsClient(config);
    this.#names = new QueueNames(config.POLYQUEUE_PREFIX, config.SQS_FIFO);
    this.#directory = new QueueDirectory(this.#client, config);
    this.#ctx = {
      client: this.#client,
      config,
      logger,
      directory: this.#directory,
      deleteMessage: (url, receipt) => this.#deleteBatcher(url).add(receipt),
      changeVisibility: (url, receipt, seconds) => this.#visibilityBatcher(url).add({ receipt, seconds }),
    };
  }

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const outgoing = messages.map(
      (m): OutgoingSqsMessage => ({
        body: encodeEnvelope(m.envelope),
        ...(m.delayMs !== undefined ? { delayMs: m.delayMs } : {}),
        // Keyless jobs get a group each: a shared group would make every retry stall them all.
        groupId: m.key ?? m.envelope.id,
        dedupId: m.envelope.idempotencyKey ?? m.envelope.id,
      }),
    );
    const names = this.#names.queue(queue);
    await this.#withQueue(names, (pair) =>
      sendMessages(this.#client, pair.url, outgoing, this.#config.SQS_FIFO),
    );
  }

  consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    return this.#run(this.#names.queue(queue), handler, options);
  }

  async publishEvent(topic: string, event: Envelope): Promise<void> {
    const urls = await this.#groupQueueUrls(topic);
    const message: OutgoingSqsMessage = {
      body: encodeEnvelope(event),
      groupId: event.id,
      dedupId: event.idempotencyKey ?? event.id,
    };
    await Promise.all(
      urls.map((url) =>
        sendMessages(this.#client, url, [message], this.#config.SQS_FIFO).catch((error) => {
          // A group queue deleted since ListQueues: nobody is left to receive there.
          if (!isQueueMissing(error)) throw error;
        }),
      ),
    );
  }

  subscribe(topic: string, group: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    return this.#run(this.#names.group(topic, group), handler, options);
  }

  async stats(queue: string): Promise<QueueStats> {
    return this.#withQueue(this.#names.queue(queue), async (pair) => {
      const [main, dead] = await Promise.all([this.#counts(pair.url), this.#counts(pair.deadUrl)]);
      return {
        ready: main.visible,
        inFlight: main.notVisible,
        delayed: main.delayed,
        dead: dead.visible + dead.notVisible + dead.delayed,
      };
    });
  }

  deadLetters(queue: string): DeadLetterStore {
    return new SqsDeadLetters(this.#ctx, this.#names.queue(queue));
  }

  async ping(): Promise<void> {
    await this.#client.send(
      new ListQueuesCommand({ QueueNamePrefix: this.#config.POLYQUEUE_PREFIX, MaxResults: 1 }),
    );
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await Promise.allSettled([...this.#consumers]);
    const batchers = [...this.#deletes.values(), ...this.#visibility.values()];
    await Promise.allSettled(batchers.map((b) => b.idle()));
    this.#client.destroy();
  }

  #run(names: QueueNamePair, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const signal = AbortSignal.any([options.signal, this.#closing.signal]);
    const running = runConsumer(this.#ctx, names, handler, { ...options, signal });
    this.#consumers.add(running);
    void running.finally(() => this.#consumers.delete(running)).catch(() => {});
    return running;
  }

  /** Runs an operation on a queue pair; if SQS says the queue is gone, creates it again and retries once. */
  async #withQueue<T>(
    names: QueueNamePair,
    operation: (pair: { url: string; deadUrl: string }) => Promise<T>,
  ): Promise<T> {
    try {
      return await operation(await this.#directory.pair(names));
    } catch (error) {
      if (!isQueueMissing(error)) throw error;
      this.#directory.forget(names);
      return operation(await this.#directory.pair(names));
    }
  }

  async #counts(url: string): Promise<{ visible: number; notVisible: number; delayed: number }> {
    const result = await this.#client.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const read = (value: string | undefined) => Number(value ?? 0) || 0;
    const a = result.Attributes ?? {};
    return {
      visible: read(a.ApproximateNumberOfMessages),
      notVisible: read(a.ApproximateNumberOfMessagesNotVisible),
      delayed: read(a.ApproximateNumberOfMessagesDelayed),
    };
  }

  /** Every group queue of a topic, now: a group joined a moment ago is included. */
  async #groupQueueUrls(topic: string): Promise<string[]> {
    const urls: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.#client.send(
        new ListQueuesCommand({
          QueueNamePrefix: this.#names.topicPrefix(topic),
          MaxResults: 1000,
          NextToken: nextToken,
        }),
      );
      urls.push(...(page.QueueUrls ?? []).filter((url) => this.#names.isGroupQueueUrl(url, topic)));
      nextToken = page.NextToken;
    } while (nextToken);
    return urls;
  }

  #deleteBatcher(url: string): Batcher<string> {
    let batcher = this.#deletes.get(url);
    if (!batcher) {
      batcher = new Batcher<string>(async (receipts) => {
        const result = await this.#client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: url,
            Entries: receipts.map((receipt, i) => ({ Id: entryId(i), ReceiptHandle: receipt })),
          }),
        );
        return batchOutcomes(receipts.length, result.Failed, 'DeleteMessage');
      });
      this.#deletes.set(url, batcher);
    }
    return batcher;
  }

  #visibilityBatcher(url: string): Batcher<Visibility> {
    let batcher = this.#visibility.get(url);
    if (!batcher) {
      batcher = new Batcher<Visibility>(async (items) => {
        const result = await this.#client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: url,
            Entries: items.map((item, i) => ({
              Id: entryId(i),
              ReceiptHandle: item.receipt,
              VisibilityTimeout: item.seconds,
            })),
          }),
        );
        return batchOutcomes(items.length, result.Failed, 'ChangeMessageVisibility');
      });
      this.#visibility.set(url, batcher);
    }
    return batcher;
  }
}
