/**
 * What polyqueue puts around a body on SQS: message attributes, FIFO group and deduplication
 * ids, delays, and the attempt number read back from a received message. Sending is batched
 * here too (10 entries and at most 256 KiB per SendMessageBatch).
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  type Message,
  type MessageAttributeValue,
  type MessageSystemAttributeName,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { entryId, SQS_BATCH_MAX } from './batcher';

/** Message attribute names (SQS allows 10 per message). */
export const ATTR = {
  /** The attempt this copy's first receive is; absent means 1. Set when retry() sends a copy. */
  attempt: 'polyqueue-attempt',
  /** Epoch ms before which the message must not reach a handler (delays beyond SQS's 15 minutes). */
  notBefore: 'polyqueue-not-before',
  /** Dead letters: why, when, the original SQS message id and (FIFO) message group. */
  reason: 'polyqueue-reason',
  deadAt: 'polyqueue-dead-at',
  messageId: 'polyqueue-message-id',
  group: 'polyqueue-group',
} as const;

/** What ReceiveMessage asks for on every call. */
export const SYSTEM_ATTRIBUTES: MessageSystemAttributeName[] = [
  'ApproximateReceiveCount',
  'SentTimestamp',
  'MessageGroupId',
];

/** SQS's per-message delay limit (DelaySeconds): 15 minutes. */
export const MAX_DELAY_S = 900;
/** SQS's visibility timeout limit: 12 hours. */
export const MAX_VISIBILITY_S = 43_200;
const MAX_BATCH_BYTES = 256 * 1024;
const MAX_REASON_CHARS = 2_000;

export interface OutgoingSqsMessage {
  body: string;
  /** Standard queues only: deliver no earlier than this many ms from now. */
  delayMs?: number;
  /** Carries an earlier deadline over when a long delay is re-scheduled in 15-minute hops. */
  notBefore?: number;
  /** Attempt of the copy's first receive (retry copies); omitted for 1. */
  attempt?: number;
  /** FIFO only. */
  groupId?: string;
  dedupId?: string;
  attributes?: Record<string, string>;
}

/**
 * FIFO group and deduplication ids allow 128 characters of printable ASCII; anything else is
 * hashed, so two different keys never share an id.
 */
export function fifoId(value: string): string {
  return /^[\x21-\x7e]{1,128}$/.test(value) ? value : createHash('sha256').update(value).digest('hex');
}

export function stringAttribute(message: Message, name: string): string | undefined {
  return message.MessageAttributes?.[name]?.StringValue;
}

/**
 * The attempt of a received message: the copy's starting attempt plus SQS's receive count.
 * A receive after a crash (visibility timeout expiry) counts as an attempt too.
 */
export function deliveryAttempt(message: Message): number {
  const base = Number(stringAttribute(message, ATTR.attempt) ?? 1);
  const received = Number(message.Attributes?.ApproximateReceiveCount ?? 1);
  return (
    (Number.isInteger(base) && base >= 1 ? base : 1) +
    (Number.isInteger(received) && received >= 1 ? received - 1 : 0)
  );
}

/** The epoch ms a message is held until, when it carries one. */
export function notBeforeOf(message: Message): number | undefined {
  const value = Number(stringAttribute(message, ATTR.notBefore));
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

export function truncateReason(reason: string): string {
  return reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS - 1)}…` : reason;
}

function toEntry(
  message: OutgoingSqsMessage,
  index: number,
  fifo: boolean,
  now: number,
): SendMessageBatchRequestEntry {
  const attributes: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(message.attributes ?? {})) {
    attributes[name] = { DataType: 'String', StringValue: value };
  }
  if (message.attempt !== undefined && message.attempt > 1) {
    attributes[ATTR.attempt] = { DataType: 'Number', StringValue: String(message.attempt) };
  }
  const entry: SendMessageBatchRequestEntry = { Id: entryId(index), MessageBody: message.body };
  if (fifo) {
    if ((message.delayMs ?? 0) > 0) {
      throw new Error(
        'SQS FIFO queues cannot delay one message (only the whole queue): publish without delayMs',
      );
    }
    entry.MessageGroupId = fifoId(message.groupId ?? randomUUID());
    entry.MessageDeduplicationId = fifoId(message.dedupId ?? randomUUID());
  } else {
    const notBefore =
      message.notBefore ?? ((message.delayMs ?? 0) > 0 ? now + (message.delayMs ?? 0) : undefined);
    if (notBefore !== undefined) {
      const remainingS = Math.ceil((notBefore - now) / 1000);
      if (remainingS > 0) entry.DelaySeconds = Math.min(remainingS, MAX_DELAY_S);
      // Beyond 15 minutes the consumer re-schedules the message until this deadline.
      if (remainingS > MAX_DELAY_S)
        attributes[ATTR.notBefore] = { DataType: 'Number', StringValue: String(notBefore) };
    }
  }
  if (Object.keys(attributes).length > 0) entry.MessageAttributes = attributes;
  return entry;
}

function entryBytes(entry: SendMessageBatchRequestEntry): number {
  let bytes = Buffer.byteLength(entry.MessageBody ?? '');
  for (const [name, value] of Object.entries(entry.MessageAttributes ?? {})) {
    bytes +=
      Buffer.byteLength(name) +
      Buffer.byteLength(value.DataType ?? '') +
      Buffer.byteLength(value.StringValue ?? '');
  }
  return bytes;
}

/** Splits entries into SendMessageBatch requests: at most 10 entries and 256 KiB each, order kept. */
function chunk(entries: SendMessageBatchRequestEntry[]): SendMessageBatchRequestEntry[][] {
  const chunks: SendMessageBatchRequestEntry[][] = [];
  let current: SendMessageBatchRequestEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = entryBytes(entry);
    if (current.length > 0 && (current.length === SQS_BATCH_MAX || bytes + size > MAX_BATCH_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push({ ...entry, Id: entryId(current.length) });
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Sends messages and resolves once SQS has stored every one. FIFO batches go one after another
 * so their order holds; standard batches go a few at a time.
 */
export async function sendMessages(
  client: SQSClient,
  queueUrl: string,
  messages: readonly OutgoingSqsMessage[],
  fifo: boolean,
): Promise<void> {
  const now = Date.now();
  const chunks = chunk(messages.map((m, i) => toEntry(m, i, fifo, now)));
  const sendChunk = async (entries: SendMessageBatchRequestEntry[]) => {
    const result = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
    const failed = result.Failed ?? [];
    if (failed.length > 0) {
      const first = failed[0]!;
      throw new Error(
        `SQS rejected ${failed.length} of ${entries.length} messages: ${first.Code ?? 'error'}${first.Message ? ` (${first.Message})` : ''}`,
      );
    }
  };
  const parallel = fifo ? 1 : 4;
  for (let i = 0; i < chunks.length; i += parallel) {
    await Promise.all(chunks.slice(i, i + parallel).map(sendChunk));
  }
}
