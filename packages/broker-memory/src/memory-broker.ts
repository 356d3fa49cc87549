/**
 * memory — an in-process broker for unit tests of core and the apps. Not a stand-in for a
 * real broker: messages live in this process only and die with it.
 *
 * Guarantees: at-least-once while the process lives; nothing survives it (crossProcess false).
 * Ack durability 'on-resolve': the queue is this process's memory.
 * Native: delayed delivery (timers), priority (three ready lanes), pub/sub (a queue per group).
 * Brokers created with the same MEMORY_NAMESPACE in one process share their queues, so tests
 * can run competing consumers.
 */
import {
  AlreadySettledError,
  type Broker,
  type BrokerAdmin,
  type BrokerEvents,
  type Capabilities,
  type ConsumeOptions,
  type DeadLetter,
  type DeadLetterStore,
  type Delivery,
  type DeliveryHandler,
  type Envelope,
  encodeEnvelope,
  type OutgoingMessage,
  type Priority,
  type QueueStats,
  type SettleOutcome,
  withAttempt,
} from '@polyqueue/core';

interface Message {
  id: string;
  body: string;
  attempt: number;
  priority: Priority;
}

const LANES: readonly Priority[] = ['high', 'normal', 'low'];

/** A FIFO with O(1) shift (Array.prototype.shift is O(n) on long arrays). */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

class MemoryQueue {
  readonly lanes: Record<Priority, Fifo<Message>> = { high: new Fifo(), normal: new Fifo(), low: new Fifo() };
  readonly delayed = new Map<Message, NodeJS.Timeout>();
  readonly inFlight = new Set<Message>();
  readonly dead: (DeadLetter & { message: Message })[] = [];
  #wakers = new Set<() => void>();

  push(message: Message, delayMs = 0): void {
    if (delayMs > 0) {
      const timer = setTimeout(() => {
        this.delayed.delete(message);
        this.push(message);
      }, delayMs);
      timer.unref?.();
      this.delayed.set(message, timer);
      return;
    }
    this.lanes[message.priority].push(message);
    for (const wake of this.#wakers) wake();
  }

  take(): Message | undefined {
    for (const lane of LANES) {
      const message = this.lanes[lane].shift();
      if (message) {
        this.inFlight.add(message);
        return message;
      }
    }
    return undefined;
  }

  /** Resolves when a message may be ready or the signal aborts. */
  waitForWork(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#wakers.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#wakers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  ready(): number {
    return LANES.reduce((n, lane) => n + this.lanes[lane].length, 0);
  }
}

let rawCounter = 0;
const namespaces = new Map<string, Map<string, MemoryQueue>>();

export interface MemoryBrokerOptions {
  namespace?: string;
}

export class MemoryBroker implements Broker, BrokerEvents, BrokerAdmin {
  readonly name = 'memory';
  readonly capabilities: Capabilities = {
    delayedDelivery: 'native',
    priority: 'native',
    redeliveryAfterCrash: 'none',
    ordering: 'fifo',
    pubsub: 'native',
    leaseExtension: false,
    delivery: 'at-least-once',
    // The queue is this process's memory: an ack is done when it returns.
    ackDurable: 'on-resolve',
    crossProcess: false,
  };
  readonly #queues: Map<string, MemoryQueue>;
  /** topic -> groups subscribed, each a queue named `topic#group`. */
  readonly #groups = new Map<string, Set<string>>();

  constructor(options: MemoryBrokerOptions = {}) {
    const namespace = options.namespace ?? 'default';
    const queues = namespaces.get(namespace) ?? new Map<string, MemoryQueue>();
    namespaces.set(namespace, queues);
    this.#queues = queues;
  }

  #queue(name: string): MemoryQueue {
    const queue = this.#queues.get(name) ?? new MemoryQueue();
    this.#queues.set(name, queue);
    return queue;
  }

  async publish(queueName: string, messages: readonly OutgoingMessage[]): Promise<void> {
    const queue = this.#queue(queueName);
    for (const m of messages) {
      queue.push(
        {
          id: m.envelope.id,
          body: encodeEnvelope(m.envelope),
          attempt: m.envelope.attempt,
          priority: m.priority ?? 'normal',
        },
        m.delayMs,
      );
    }
  }

  /** Enqueues raw bytes, as a producer in another language would (tests of malformed input). */
  publishRaw(queueName: string, body: string): void {
    this.#queue(queueName).push({ id: `raw-${++rawCounter}`, body, attempt: 1, priority: 'normal' });
  }

  async consume(queueName: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void> {
    const queue = this.#queue(queueName);
    const running = new Set<Promise<void>>();
    options.onReady?.();
    while (!options.signal.aborted) {
      if (running.size >= options.concurrency) {
        await Promise.race(running);
        continue;
      }
      const message = queue.take();
      if (!message) {
        await queue.waitForWork(options.signal);
        continue;
      }
      const task = handler(this.#delivery(queue, message)).finally(() => running.delete(task));
      running.add(task);
    }
    await Promise.allSettled(running);
  }

  #delivery(queue: MemoryQueue, message: Message): Delivery {
    let settled = false;
    const settle = (outcome: SettleOutcome) => {
      if (settled) throw new AlreadySettledError(message.id, outcome);
      settled = true;
      queue.inFlight.delete(message);
    };
    return {
      messageId: message.id,
      body: message.body,
      attempt: message.attempt,
      ack: async () => settle('ack'),
      retry: async (delayMs) => {
        settle('retry');
        const attempt = message.attempt + 1;
        queue.push({ ...message, attempt, body: withAttempt(message.body, attempt, message.id) }, delayMs);
      },
      deadLetter: async (reason) => {
        settle('deadLetter');
        queue.dead.push({
          id: message.id,
          body: message.body,
          reason,
          deadAt: new Date().toISOString(),
          message,
        });
      },
      extend: async () => {},
    };
  }

  async publishEvent(topic: string, event: Envelope): Promise<void> {
    for (const group of this.#groups.get(topic) ?? [])
      await this.publish(`${topic}#${group}`, [{ envelope: event }]);
  }

  async subscribe(
    topic: string,
    group: string,
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<void> {
    const groups = this.#groups.get(topic) ?? new Set<string>();
    this.#groups.set(topic, groups);
    groups.add(group);
    await this.consume(`${topic}#${group}`, handler, options);
  }

  async stats(queueName: string): Promise<QueueStats> {
    const q = this.#queue(queueName);
    return { ready: q.ready(), inFlight: q.inFlight.size, delayed: q.delayed.size, dead: q.dead.length };
  }

  deadLetters(queueName: string): DeadLetterStore {
    const queue = this.#queue(queueName);
    return {
      list: async (limit) => queue.dead.slice(0, limit).map(({ message: _m, ...d }) => d),
      redrive: async (ids) => {
        const chosen = queue.dead.filter((d) => ids === 'all' || ids.includes(d.id));
        for (const d of chosen) {
          queue.dead.splice(queue.dead.indexOf(d), 1);
          queue.push({ ...d.message, attempt: 1, body: withAttempt(d.message.body, 1, d.id) });
        }
        return chosen.length;
      },
      purge: async () => queue.dead.splice(0).length,
    };
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}
