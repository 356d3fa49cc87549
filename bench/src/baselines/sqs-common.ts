/**
 * What the sqs baselines (sqs-raw.ts, sqs-best.ts) share around their loops: the client with
 * the driver's settings (config.ts createSqsClient()), a fresh standard queue per run with the
 * visibility timeout and 14-day retention (queues.ts), the batch requests that fail the run on
 * a partial failure, a receive that ends quietly once the run is stopped, and the clean-up.
 * Each baseline keeps its own send window, receive loop and deletes.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  type Message,
  ReceiveMessageCommand,
  type ReceiveMessageCommandInput,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { BaselineOptions } from './index';

export interface SqsRun {
  /** SQS_VISIBILITY_TIMEOUT_S (default 30). */
  visibilityS: number;
  /** Creates the run's queue and resolves with its URL. */
  create(): Promise<string>;
  /** One SendMessageBatch; throws if any entry failed. */
  send(queueUrl: string, entries: SendMessageBatchRequestEntry[]): Promise<void>;
  /** One DeleteMessageBatch of these receipt handles; resolves with how many failed. */
  deleteBatch(queueUrl: string, receipts: string[]): Promise<number>;
  /** One ReceiveMessage with the run's visibility timeout; undefined once `signal` stopped it. */
  receive(
    input: Omit<ReceiveMessageCommandInput, 'VisibilityTimeout'>,
    signal: AbortSignal,
  ): Promise<Message[] | undefined>;
  /** Deletes the queue if it was created and closes the client; never throws. */
  close(): Promise<void>;
}

export function sqsRun(options: BaselineOptions, name: 'raw' | 'best', requestTimeoutMs: number): SqsRun {
  const visibilityS = Number(options.env.SQS_VISIBILITY_TIMEOUT_S ?? 30);
  const client = new SQSClient({
    region: options.env.AWS_REGION ?? 'us-east-1',
    endpoint: options.env.SQS_ENDPOINT ?? 'http://127.0.0.1:9324',
    credentials: {
      accessKeyId: options.env.AWS_ACCESS_KEY_ID ?? 'x',
      secretAccessKey: options.env.AWS_SECRET_ACCESS_KEY ?? 'x',
    },
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: requestTimeoutMs },
  });
  let url: string | undefined;
  return {
    visibilityS,
    async create() {
      const created = await client.send(
        new CreateQueueCommand({
          QueueName: `${name}-bench-${randomUUID()}`,
          Attributes: { VisibilityTimeout: String(visibilityS), MessageRetentionPeriod: '1209600' },
        }),
      );
      url = created.QueueUrl!;
      return url;
    },
    async send(queueUrl, entries) {
      const result = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      if ((result.Failed ?? []).length > 0)
        throw new Error(`SendMessageBatch: ${result.Failed!.length} failed`);
    },
    async deleteBatch(queueUrl, receipts) {
      const result = await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: receipts.map((ReceiptHandle, i) => ({ Id: `e${i}`, ReceiptHandle })),
        }),
      );
      return result.Failed?.length ?? 0;
    },
    async receive(input, signal) {
      try {
        const result = await client.send(
          new ReceiveMessageCommand({ ...input, VisibilityTimeout: visibilityS }),
          { abortSignal: signal },
        );
        return result.Messages ?? [];
      } catch (error) {
        if (signal.aborted) return undefined;
        throw error;
      }
    },
    async close() {
      if (url) await client.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => {});
      client.destroy();
    },
  };
}
