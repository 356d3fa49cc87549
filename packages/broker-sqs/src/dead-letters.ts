/**
 * Dead letters of queue Q live in the SQS queue `<prefix>-Q-dead`, reached two ways:
 * deadLetter(reason) sends the body there with its reason as a message attribute, and SQS's
 * own RedrivePolicy moves a message there after SQS_MAX_RECEIVE_COUNT receives without a
 * delete (a job that crashes or hangs every worker it reaches; retries are receives too).
 *
 * SQS has no "peek": list() receives dead letters with a short visibility timeout and makes
 * them visible again at once (ChangeMessageVisibility 0). While a listing runs, another
 * list/redrive/purge does not see the messages it holds. Standard queues keep no order, so
 * "oldest first" is by the recorded dead-at time among those read.
 */
import { randomUUID } from 'node:crypto';
import { type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { type DeadLetter, type DeadLetterStore, decodeEnvelope, withAttempt } from '@polyqueue/core';
import type { ConsumerContext, QueueNamePair } from './consumer';
import { ATTR, type OutgoingSqsMessage, SYSTEM_ATTRIBUTES, sendMessages, stringAttribute } from './messages';

/** How long a dead letter stays hidden while list/redrive holds it; it returns by itself if we die. */
const HOLD_S = 30;

export class SqsDeadLetters implements DeadLetterStore {
  constructor(
    private readonly ctx: ConsumerContext,
    private readonly names: QueueNamePair,
  ) {}

  async list(limit: number): Promise<DeadLetter[]> {
    if (limit <= 0) return [];
    const { deadUrl } = await this.ctx.directory.pair(this.names);
    const held: Message[] = [];
    try {
      for await (const batch of this.#receiveAll(deadUrl, () => limit - held.length)) held.push(...batch);
    } finally {
      await Promise.allSettled(held.map((m) => this.ctx.changeVisibility(deadUrl, m.ReceiptHandle!, 0)));
    }
    return held
      .map((m) => this.#toDeadLetter(m))
      .sort((a, b) => a.deadAt.localeCompare(b.deadAt))
      .slice(0, limit);
  }

  async redrive(ids: readonly string[] | 'all'): Promise<number> {
    const { url, deadUrl } = await this.ctx.directory.pair(this.names);
    const wanted = ids === 'all' ? undefined : new Set(ids);
    const skipped: Message[] = [];
    let moved = 0;
    try {
      for await (const batch of this.#receiveAll(deadUrl, () => 10)) {
        const chosen = batch.filter((m) => !wanted || wanted.has(this.#toDeadLetter(m).id));
        skipped.push(...batch.filter((m) => !chosen.includes(m)));
        if (chosen.length === 0) continue;
        // Send first, then delete: a crash in between leaves a duplicate, never a loss.
        await sendMessages(
          this.ctx.client,
          url,
          chosen.map((m) => this.#backToQueue(m)),
          this.ctx.config.SQS_FIFO,
        );
        await Promise.all(chosen.map((m) => this.ctx.deleteMessage(deadUrl, m.ReceiptHandle!)));
        moved += chosen.length;
      }
    } finally {
      await Promise.allSettled(skipped.map((m) => this.ctx.changeVisibility(deadUrl, m.ReceiptHandle!, 0)));
    }
    return moved;
  }

  /**
   * Receives and deletes until the queue is empty, so the count is exact. (PurgeQueue would be
   * one request, but it reports no count and AWS allows it once per 60 s per queue.)
   */
  async purge(): Promise<number> {
    const { deadUrl } = await this.ctx.directory.pair(this.names);
    let deleted = 0;
    for await (const batch of this.#receiveAll(deadUrl, () => 10)) {
      await Promise.all(batch.map((m) => this.ctx.deleteMessage(deadUrl, m.ReceiptHandle!)));
      deleted += batch.length;
    }
    return deleted;
  }

  /**
   * Batches of received dead letters until the queue looks empty or `room()` is 0. The last,
   * empty answer is a 1 s long poll: a short poll on AWS samples only some servers and may come
   * back empty while messages remain.
   */
  async *#receiveAll(queueUrl: string, room: () => number): AsyncGenerator<Message[]> {
    const seen = new Set<string>();
    let confirming = false;
    while (room() > 0) {
      const result = await this.ctx.client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, room()),
          WaitTimeSeconds: confirming ? 1 : 0,
          VisibilityTimeout: HOLD_S,
          MessageSystemAttributeNames: SYSTEM_ATTRIBUTES,
          MessageAttributeNames: ['All'],
        }),
      );
      const fresh = (result.Messages ?? []).filter((m) => !seen.has(m.MessageId ?? ''));
      if (fresh.length === 0) {
        // A message seen twice means our hold ran out during a long scan: we have them all.
        if (confirming || (result.Messages ?? []).length > 0) return;
        confirming = true;
        continue;
      }
      confirming = false;
      for (const m of fresh) seen.add(m.MessageId ?? '');
      yield fresh;
    }
  }

  #originalId(message: Message): string {
    return stringAttribute(message, ATTR.messageId) ?? message.MessageId ?? randomUUID();
  }

  #toDeadLetter(message: Message): DeadLetter {
    const body = message.Body ?? '';
    const originalId = this.#originalId(message);
    const decoded = decodeEnvelope(body, originalId);
    const deadAt = stringAttribute(message, ATTR.deadAt) ?? sentAt(message);
    const reason =
      stringAttribute(message, ATTR.reason) ??
      `moved by the SQS redrive policy after ${this.ctx.config.SQS_MAX_RECEIVE_COUNT} receives without a delete (retried, or workers crashed or hung on it)`;
    return { id: decoded.ok ? decoded.envelope.id : originalId, body, reason, deadAt };
  }

  /** A dead letter as a new first attempt: the body's attempt reset, no attempt attribute. */
  #backToQueue(message: Message): OutgoingSqsMessage {
    const originalId = this.#originalId(message);
    return {
      body: withAttempt(message.Body ?? '', 1, originalId),
      attributes: { [ATTR.messageId]: originalId },
      groupId: stringAttribute(message, ATTR.group) ?? message.Attributes?.MessageGroupId ?? originalId,
      // A new deduplication id: the first send of this job may be inside SQS's 5-minute window.
      dedupId: randomUUID(),
    };
  }
}

function sentAt(message: Message): string {
  const ms = Number(message.Attributes?.SentTimestamp);
  return new Date(Number.isFinite(ms) && ms > 0 ? ms : Date.now()).toISOString();
}
