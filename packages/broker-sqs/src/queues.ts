/**
 * Queue names and URLs. A logical queue Q becomes `<prefix>-Q` with dead letters in
 * `<prefix>-Q-dead` (FIFO: both with the mandatory `.fifo` suffix). The directory resolves a
 * name to its URL once, creating the queue pair (with a RedrivePolicy from main to dead) when it
 * does not exist, and forgets a URL when SQS says the queue is gone (an in-memory local server
 * that restarted), so the next call creates it again.
 */
import { createHash } from 'node:crypto';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type QueueAttributeName,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SqsConfig } from './config';

/** SQS keeps messages at most 14 days; the default of 4 days is short for dead letters. */
const RETENTION_S = '1209600';
const MAX_NAME = 80;

export interface QueuePair {
  url: string;
  deadUrl: string;
}

/** Only letters, digits, `-` and `_`; anything else (or a name too long) gets a hash, so distinct names stay distinct. */
export function safeName(name: string, max: number): string {
  const cleaned = name.replace(/[^A-Za-z0-9_-]/g, '_');
  if (cleaned === name && name.length > 0 && name.length <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${cleaned.slice(0, max - 9)}-${hash}`;
}

export class QueueNames {
  readonly #suffix: string;

  constructor(
    private readonly prefix: string,
    readonly fifo: boolean,
  ) {
    this.#suffix = fifo ? '.fifo' : '';
  }

  /** `polyqueue-email`, `polyqueue-email-dead` (FIFO: `polyqueue-email.fifo`, `polyqueue-email-dead.fifo`). */
  queue(queue: string): { main: string; dead: string } {
    const base = `${this.prefix}-${safeName(queue, MAX_NAME - this.prefix.length - 11)}`;
    return { main: `${base}${this.#suffix}`, dead: `${base}-dead${this.#suffix}` };
  }

  /**
   * The ListQueues prefix shared by every group queue of a topic. The topic's length is part of
   * it so that topic `a` never matches the groups of topic `a-b`.
   */
  topicPrefix(topic: string): string {
    const t = safeName(topic, 25);
    return `${this.prefix}-evt-${t.length}-${t}-`;
  }

  /** One queue per (topic, group); its dead letters sit outside the topic's ListQueues prefix. */
  group(topic: string, group: string): { main: string; dead: string } {
    const t = safeName(topic, 25);
    const g = safeName(group, 20);
    return {
      main: `${this.topicPrefix(topic)}${g}${this.#suffix}`,
      dead: `${this.prefix}-evtdead-${t.length}-${t}-${g}${this.#suffix}`,
    };
  }

  /** Whether a queue URL found under topicPrefix() is a group queue of this kind (standard or FIFO). */
  isGroupQueueUrl(url: string, topic: string): boolean {
    const name = url.slice(url.lastIndexOf('/') + 1);
    return name.startsWith(this.topicPrefix(topic)) && name.endsWith('.fifo') === this.fifo;
  }
}

export function isQueueMissing(error: unknown): boolean {
  const name = (error as { name?: string; Code?: string } | undefined)?.name ?? '';
  const code = (error as { Code?: string } | undefined)?.Code ?? '';
  return [name, code].some((n) => n.includes('QueueDoesNotExist') || n.includes('NonExistentQueue'));
}

export class QueueDirectory {
  readonly #pairs = new Map<string, Promise<QueuePair>>();

  constructor(
    private readonly client: SQSClient,
    private readonly config: SqsConfig,
  ) {}

  /** The URLs of a main queue and its dead letters, created on first use. */
  pair(names: { main: string; dead: string }): Promise<QueuePair> {
    let pending = this.#pairs.get(names.main);
    if (!pending) {
      pending = this.#ensurePair(names);
      this.#pairs.set(names.main, pending);
      pending.catch(() => this.#pairs.delete(names.main));
    }
    return pending;
  }

  /** After QueueDoesNotExist: resolve (and if need be create) the pair again on next use. */
  forget(names: { main: string }): void {
    this.#pairs.delete(names.main);
  }

  async #ensurePair(names: { main: string; dead: string }): Promise<QueuePair> {
    // An existing queue is used as it is: its attributes may be managed by infrastructure code.
    const existing = await this.#find(names.main);
    const deadUrl = (await this.#find(names.dead)) ?? (await this.#create(names.dead, {}));
    if (existing) return { url: existing, deadUrl };
    const arn = await this.#arn(deadUrl);
    const url = await this.#create(names.main, {
      VisibilityTimeout: String(this.config.SQS_VISIBILITY_TIMEOUT_S),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: arn,
        maxReceiveCount: this.config.SQS_MAX_RECEIVE_COUNT,
      }),
    });
    return { url, deadUrl };
  }

  async #find(name: string): Promise<string | undefined> {
    try {
      return (await this.client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    } catch (error) {
      if (isQueueMissing(error)) return undefined;
      throw error;
    }
  }

  async #create(name: string, attributes: Partial<Record<QueueAttributeName, string>>): Promise<string> {
    const all: Partial<Record<QueueAttributeName, string>> = {
      MessageRetentionPeriod: RETENTION_S,
      ...attributes,
    };
    if (this.config.SQS_FIFO) all.FifoQueue = 'true';
    try {
      const created = await this.client.send(new CreateQueueCommand({ QueueName: name, Attributes: all }));
      if (!created.QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
      return created.QueueUrl;
    } catch (error) {
      // Another process created it at the same moment with other attributes: use theirs.
      if ((error as { name?: string }).name === 'QueueNameExists') {
        const url = await this.#find(name);
        if (url) return url;
      }
      throw error;
    }
  }

  async #arn(url: string): Promise<string> {
    const result = await this.client.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    const arn = result.Attributes?.QueueArn;
    if (!arn) throw new Error(`GetQueueAttributes gave no QueueArn for ${url}`);
    return arn;
  }
}
