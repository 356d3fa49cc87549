/**
 * The sqs driver's baseline: a hand-written @aws-sdk/client-sqs loop that puts on the wire what
 * the driver does for publish() and consume() on a standard queue, and nothing else.
 *
 * Mirrors packages/broker-sqs/src:
 * - config.ts createSqsClient(): region, endpoint, dummy keys against a local server,
 *   maxAttempts 3, the same connection and request timeouts.
 * - queues.ts: the queue is created on first use (inside the timing, as the driver's first
 *   publish() creates its pair) with the visibility timeout and 14-day retention. The driver's
 *   dead-letter queue and RedrivePolicy are left out: nothing goes there in this run.
 * - messages.ts sendMessages(): a batch of B becomes SendMessageBatch requests of 10 entries,
 *   four requests at a time.
 * - consumer.ts runConsumer(): one receive loop; each ReceiveMessage asks for min(10, free
 *   handler slots) with long polling (SQS_WAIT_TIME_S, default 20), the visibility timeout and
 *   the same attribute names; every message's parsed body goes to the async handler
 *   (raw-handler.ts) at once, up to
 *   `concurrency` running.
 * - sqs-broker.ts + batcher.ts: acks are deletes collected over one macrotask
 *   (setImmediate, or at once when 10 are waiting) into DeleteMessageBatch requests; a handler
 *   slot is free again once its delete has been answered (the worker awaits ack()).
 * The client, queue, batch requests and clean-up are sqs-common.ts, shared with sqs-best.ts.
 */
import type { Message, SendMessageBatchRequestEntry } from '@aws-sdk/client-sqs';
import { createEnvelope, encodeEnvelope } from '@polyqueue/core';
import { perSecond, type Rates } from '../measure';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';
import { sqsRun } from './sqs-common';

export async function sqsRaw(options: BaselineOptions): Promise<Rates> {
  const waitTimeS = Number(options.env.SQS_WAIT_TIME_S ?? 20);
  const run = sqsRun(options, 'raw', (waitTimeS + 15) * 1000);
  try {
    const t0 = performance.now();
    const queueUrl = await run.create();
    const sendChunk = (entries: SendMessageBatchRequestEntry[]) => run.send(queueUrl, entries);
    for (let i = 0; i < options.jobs; i += options.batch) {
      const n = Math.min(options.batch, options.jobs - i);
      const chunks: SendMessageBatchRequestEntry[][] = [];
      for (let k = 0; k < n; k += 10) {
        chunks.push(
          Array.from({ length: Math.min(10, n - k) }, (_, j) => ({
            Id: `e${j}`,
            MessageBody: encodeEnvelope(createEnvelope('bench_job', { i: i + k + j })),
          })),
        );
      }
      for (let c = 0; c < chunks.length; c += 4) await Promise.all(chunks.slice(c, c + 4).map(sendChunk));
    }
    const enqueuePerSec = perSecond(options.jobs, t0);

    // Acks of handlers finishing in the same macrotask share a DeleteMessageBatch; each ack
    // resolves when its request has, and holds its handler slot until then, as the driver's does.
    let pendingDeletes: { receipt: string; done: () => void }[] = [];
    let flushScheduled = false;
    let failedDeletes = 0;
    const flushDeletes = () => {
      flushScheduled = false;
      while (pendingDeletes.length > 0) {
        const batch = pendingDeletes.slice(0, 10);
        pendingDeletes = pendingDeletes.slice(10);
        void run
          .deleteBatch(
            queueUrl,
            batch.map((p) => p.receipt),
          )
          .then(
            (failed) => {
              failedDeletes += failed;
            },
            () => {
              failedDeletes += batch.length;
            },
          )
          .finally(() => {
            for (const p of batch) p.done();
          });
      }
    };
    const ack = (receipt: string) =>
      new Promise<void>((done) => {
        pendingDeletes.push({ receipt, done });
        if (pendingDeletes.length >= 10) flushDeletes();
        else if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flushDeletes);
        }
      });

    const stop = new AbortController();
    const running = new Set<Promise<void>>();
    let done = 0;
    let ended = 0;
    let wake: (() => void) | undefined;
    const t1 = performance.now();
    while (done < options.jobs) {
      const free = options.concurrency - running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      const messages: Message[] | undefined = await run.receive(
        {
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, free),
          WaitTimeSeconds: waitTimeS,
          MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'MessageGroupId'],
          MessageAttributeNames: ['All'],
        },
        stop.signal,
      );
      if (!messages) break;
      for (const message of messages) {
        const task = rawHandler(JSON.parse(message.Body ?? '')).then(() => {
          // Counted when handled, as the framework run counts in its handler.
          if (++done === options.jobs) {
            ended = performance.now();
            stop.abort();
          }
          return ack(message.ReceiptHandle!);
        });
        running.add(task);
        void task.then(() => {
          running.delete(task);
          const w = wake;
          wake = undefined;
          w?.();
        });
      }
    }
    const processPerSec = options.jobs / ((ended - t1) / 1000);
    await Promise.all([...running]);
    if (failedDeletes > 0) throw new Error(`DeleteMessageBatch failed for ${failedDeletes} message(s)`);
    return { enqueuePerSec, processPerSec };
  } finally {
    await run.close();
  }
}
