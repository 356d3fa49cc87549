import { randomUUID } from 'node:crypto';
import {
  type DeadLetter,
  type DeadLetterStore,
  decodeEnvelope,
  type Logger,
  withAttempt,
} from '@polyqueue/core';
import type { Admin, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { copyHeaders, HEADER, headerText, type PartitionOffsets, watermarks } from './client';

/**
 * Dead letters of a queue: the topic `polyqueue.Q.dead` (one partition, kept forever), each
 * message carrying the reason, time and original message id in headers.
 *
 * A Kafka log cannot delete one message, only everything before an offset (DeleteRecords).
 * So, unlike the other brokers:
 * - list() reads the topic from its start with a throwaway consumer group (a second or two);
 * - purge() deletes every record up to the high watermark read at its start;
 * - redrive(ids) republishes the chosen letters to the queue, appends copies of the letters it
 *   keeps to the dead topic, then deletes everything up to the watermark it read. The topic then
 *   holds exactly the remaining letters, in their old order, so stats().dead (high - low) stays
 *   exact. A crash mid-way can leave a letter twice; two concurrent redrives can too.
 */

interface Stored {
  partition: number;
  offset: string;
  message: KafkaMessage;
}

export interface DeadLetterDeps {
  kafka: Kafka;
  /** An offsets admin (client.ts, AdminClient): purge reads its cache for the partitions' leaders. */
  admin: () => Promise<Admin>;
  producer: () => Promise<Producer>;
  ensureTopics: () => Promise<void>;
  deadTopic: string;
  mainTopic: string;
  logger: Logger;
}

export function deadLetterHeaders(messageId: string, reason: string, now = new Date()): IHeaders {
  return { [HEADER.messageId]: messageId, [HEADER.reason]: reason, [HEADER.deadAt]: now.toISOString() };
}

export function createDeadLetterStore(deps: DeadLetterDeps): DeadLetterStore {
  async function snapshot(): Promise<{ marks: PartitionOffsets[]; letters: Stored[] }> {
    await deps.ensureTopics();
    const marks = await watermarks(await deps.admin(), deps.deadTopic);
    return { marks, letters: await readTopic(deps, marks) };
  }

  return {
    async list(limit) {
      if (limit <= 0) return [];
      await deps.ensureTopics();
      const marks = await watermarks(await deps.admin(), deps.deadTopic);
      const letters = await readTopic(deps, marks, limit);
      return letters.slice(0, limit).map(toDeadLetter);
    },

    async redrive(ids) {
      const { marks, letters } = await snapshot();
      const wanted = ids === 'all' ? undefined : new Set(ids);
      const chosen: Stored[] = [];
      const kept: Stored[] = [];
      for (const letter of letters) {
        if (!wanted || wanted.has(toDeadLetter(letter).id)) chosen.push(letter);
        else kept.push(letter);
      }
      if (chosen.length === 0) return 0;
      const producer = await deps.producer();
      await producer.send({
        topic: deps.mainTopic,
        acks: -1,
        messages: chosen.map((letter) => {
          const id = toDeadLetter(letter).id;
          const body = letter.message.value?.toString() ?? '';
          return { key: letter.message.key, value: withAttempt(body, 1, id) };
        }),
      });
      if (kept.length > 0) {
        await producer.send({
          topic: deps.deadTopic,
          acks: -1,
          messages: kept.map((letter) => ({
            key: letter.message.key,
            value: letter.message.value,
            headers: copyHeaders(letter.message),
          })),
        });
      }
      await deleteUpTo(await deps.admin(), deps.deadTopic, marks);
      return chosen.length;
    },

    async purge() {
      await deps.ensureTopics();
      const admin = await deps.admin();
      const marks = await watermarks(admin, deps.deadTopic);
      const count = marks.reduce((sum, mark) => sum + (mark.high - mark.low), 0);
      if (count > 0) await deleteUpTo(admin, deps.deadTopic, marks);
      return count;
    },
  };
}

function toDeadLetter(stored: Stored): DeadLetter {
  const body = stored.message.value?.toString() ?? '';
  const messageId =
    headerText(stored.message, HEADER.messageId) ?? `dead/${stored.partition}/${stored.offset}`;
  const decoded = decodeEnvelope(body, messageId);
  return {
    id: decoded.ok ? decoded.envelope.id : messageId,
    body,
    reason: headerText(stored.message, HEADER.reason) ?? '',
    deadAt:
      headerText(stored.message, HEADER.deadAt) ?? new Date(Number(stored.message.timestamp)).toISOString(),
  };
}

async function deleteUpTo(admin: Admin, topic: string, marks: readonly PartitionOffsets[]): Promise<void> {
  const partitions = marks
    .filter((m) => m.high > m.low)
    .map((m) => ({ partition: m.partition, offset: String(m.high) }));
  if (partitions.length > 0) await admin.deleteTopicRecords({ topic, partitions });
}

/**
 * Reads the topic from its low to its high watermarks (as given) with a throwaway consumer group,
 * oldest first, stopping early at `limit`. Kafka has no group-less reader in kafkajs.
 */
async function readTopic(
  deps: DeadLetterDeps,
  marks: readonly PartitionOffsets[],
  limit = Infinity,
): Promise<Stored[]> {
  const pending = new Map(marks.filter((m) => m.high > m.low).map((m) => [m.partition, m.high]));
  if (pending.size === 0) return [];
  const groupId = `${deps.deadTopic}.reader-${randomUUID()}`;
  const consumer = deps.kafka.consumer({ groupId, maxWaitTimeInMs: 500, allowAutoTopicCreation: false });
  const letters: Stored[] = [];
  let finish!: () => void;
  let fail!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  consumer.on(consumer.events.CRASH, (event) => fail(event.payload.error));
  const timeout = setTimeout(() => fail(new Error(`kafka: reading ${deps.deadTopic} timed out`)), 60_000);
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [deps.deadTopic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, pause }) => {
        const high = pending.get(batch.partition);
        if (high === undefined) return;
        for (const message of batch.messages) {
          if (Number(message.offset) >= high) break;
          letters.push({ partition: batch.partition, offset: message.offset, message });
        }
        if (Number(batch.lastOffset()) >= high - 1) {
          pending.delete(batch.partition);
          pause();
        }
        if (pending.size === 0 || letters.length >= limit) finish();
      },
    });
    await done;
  } finally {
    clearTimeout(timeout);
    await consumer.disconnect().catch(() => {});
    (await deps.admin()).deleteGroups([groupId]).catch((error) => {
      deps.logger.debug({ err: error, groupId }, 'could not delete the reader group');
    });
  }
  return letters.sort(
    (a, b) =>
      Date.parse(deadAtOf(a)) - Date.parse(deadAtOf(b)) ||
      a.partition - b.partition ||
      Number(a.offset) - Number(b.offset),
  );
}

function deadAtOf(stored: Stored): string {
  return (
    headerText(stored.message, HEADER.deadAt) ?? new Date(Number(stored.message.timestamp)).toISOString()
  );
}
