/**
 * sqs, best raw loop: the fastest at-least-once producer and consumer @aws-sdk/client-sqs
 * allows on a standard queue.
 *
 *   enqueue  SendMessageBatch of 10 (the API's maximum), 32 requests in flight
 *   process  8 pollers, each: ReceiveMessage 10 (long polling), every message handled at once,
 *            one DeleteMessageBatch for the ten sent while the poller's next receive runs
 *            (one delete in flight per poller)
 *
 * Why it stays correct: a message is deleted only after its handler resolved; until then it is
 * invisible for the visibility timeout and comes back if the poller dies. A partial
 * DeleteMessageBatch failure fails the run (those messages would be redelivered).
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { perSecond, type Rates } from '../measure';
import { bodyChunks, windowed } from './best-loops';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';

const SENDS_IN_FLIGHT = 32;
const POLLERS = 8;

export async function bestSqs(options: BaselineOptions): Promise<Rates> {
  const visibilityS = Number(options.env.SQS_VISIBILITY_TIMEOUT_S ?? 30);
  const client = new SQSClient({
    region: options.env.AWS_REGION ?? 'us-east-1',
    endpoint: options.env.SQS_ENDPOINT ?? 'http://127.0.0.1:9324',
    credentials: {
      accessKeyId: options.env.AWS_ACCESS_KEY_ID ?? 'x',
      secretAccessKey: options.env.AWS_SECRET_ACCESS_KEY ?? 'x',
    },
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 35_000 },
  });
  let url: string | undefined;
  try {
    const chunks = bodyChunks(options.jobs, 10);
    const t0 = performance.now();
    const created = await client.send(
      new CreateQueueCommand({
        QueueName: `best-bench-${randomUUID()}`,
        Attributes: { VisibilityTimeout: String(visibilityS), MessageRetentionPeriod: '1209600' },
      }),
    );
    const queueUrl = created.QueueUrl!;
    url = queueUrl;
    await windowed(chunks, SENDS_IN_FLIGHT, async (bodies) => {
      const result = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: bodies.map((MessageBody, i) => ({ Id: `e${i}`, MessageBody })),
        }),
      );
      if ((result.Failed ?? []).length > 0)
        throw new Error(`SendMessageBatch: ${result.Failed!.length} failed`);
    });
    const enqueuePerSec = perSecond(options.jobs, t0);

    const stop = new AbortController();
    setMaxListeners(POLLERS * 2, stop.signal); // every poller's receive listens to it
    let done = 0;
    let ended = 0;
    const deleteBatch = async (messages: { ReceiptHandle?: string }[]) => {
      const result = await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: messages.map((m, i) => ({ Id: `e${i}`, ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
      if ((result.Failed ?? []).length > 0)
        throw new Error(`DeleteMessageBatch: ${result.Failed!.length} failed`);
      done += messages.length;
      if (done >= options.jobs) {
        ended = performance.now();
        stop.abort();
      }
    };
    const poller = async () => {
      let deleting: Promise<void> = Promise.resolve();
      while (done < options.jobs) {
        let messages: { Body?: string; ReceiptHandle?: string }[];
        try {
          const result = await client.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: 10,
              WaitTimeSeconds: 20,
              VisibilityTimeout: visibilityS,
            }),
            { abortSignal: stop.signal },
          );
          messages = result.Messages ?? [];
        } catch (error) {
          if (stop.signal.aborted) break;
          throw error;
        }
        if (messages.length === 0) continue;
        await Promise.all(messages.map((m) => rawHandler(JSON.parse(m.Body ?? ''))));
        await deleting;
        deleting = deleteBatch(messages);
      }
      await deleting;
    };
    const t1 = performance.now();
    await Promise.all(Array.from({ length: POLLERS }, poller));
    return { enqueuePerSec, processPerSec: options.jobs / ((ended - t1) / 1000) };
  } finally {
    if (url) await client.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => {});
    client.destroy();
  }
}
