import type { Envelope } from './envelope';

export type Priority = 'high' | 'normal' | 'low';

/** One message to publish. */
export interface OutgoingMessage {
  envelope: Envelope;
  /** Deliver no earlier than this many milliseconds from now. */
  delayMs?: number;
  /** Relative order among ready messages where the broker supports it (capabilities.priority). */
  priority?: Priority;
  /** Ordering / partition key: messages with the same key keep their order where the broker can. */
  key?: string;
}

/**
 * One received message. Exactly one of ack, retry or deadLetter must be called, once; the
 * runtime in core decides which. A driver never inspects the body beyond what its native
 * mechanism needs.
 */
export interface Delivery {
  /** The broker's own id for this message; the envelope id of a foreign `{type, payload}` body. */
  readonly messageId: string;
  /** The raw UTF-8 body, normally an envelope (decodeEnvelope turns it into one). */
  readonly body: string;
  /** 1 on the first delivery; retry() makes the next delivery attempt + 1. */
  readonly attempt: number;
  /**
   * True where `attempt` is, by construction, the decoded envelope's own `attempt` (the driver
   * keeps it in the body: retry() republishes the body with it raised). The runtime then takes
   * it from the envelope it decodes anyway instead of having the driver parse the body again.
   */
  readonly attemptInEnvelope?: boolean;
  /** Done: the broker forgets the message. */
  ack(): Promise<void>;
  /** Deliver again no earlier than delayMs from now, with attempt + 1. */
  retry(delayMs: number): Promise<void>;
  /** Move the message to the queue's dead letters, recording the reason. */
  deadLetter(reason: string): Promise<void>;
  /**
   * Keep the message leased for at least ms more (brokers with leases or visibility
   * timeouts); a no-op where the broker holds the message for the consumer's lifetime.
   */
  extend(ms: number): Promise<void>;
}

export type DeliveryHandler = (delivery: Delivery) => Promise<void>;

export interface ConsumeOptions {
  /** How many handlers may run at once. */
  concurrency: number;
  /** Aborting stops fetching; consume() resolves once every in-flight handler has finished. */
  signal: AbortSignal;
  /** Called once when the consumer is attached (queue declared, group joined, ...). */
  onReady?: () => void;
  /** Called when the connection is lost or restored, so /readyz and logs can tell. */
  onConnectionChange?: (connected: boolean, error?: Error) => void;
}

export interface QueueStats {
  /** Messages that could be handed out now. */
  ready: number;
  /** Handed to a consumer and not yet acked. */
  inFlight: number;
  /** Waiting for their delay (delayed publish or retry backoff). */
  delayed: number;
  /** In the dead letters. */
  dead: number;
}

export interface DeadLetter {
  /** The id used by redrive(); the envelope id where the body is an envelope. */
  id: string;
  body: string;
  reason: string;
  /** ISO timestamp. */
  deadAt: string;
}

export interface DeadLetterStore {
  /** The oldest dead letters first, at most `limit`. */
  list(limit: number): Promise<DeadLetter[]>;
  /** Publishes the named dead letters (or all) back to the queue as new first attempts; returns how many. */
  redrive(ids: readonly string[] | 'all'): Promise<number>;
  /** Deletes every dead letter; returns how many. */
  purge(): Promise<number>;
}

/**
 * What the broker does natively, emulates, or cannot do. The conformance suite changes its
 * checks by these flags, never by broker name; startup fails if a queue needs one it lacks.
 */
export interface Capabilities {
  /** delayMs on publish and retry(delayMs). */
  delayedDelivery: 'native' | 'emulated' | 'none';
  /** high/normal/low honoured among ready messages. */
  priority: 'native' | 'emulated' | 'none';
  /** A message whose consumer died unacked comes back ('lease': after a lease or visibility timeout). */
  redeliveryAfterCrash: 'lease' | 'connection' | 'none';
  /** Order kept: none, per key, or for the whole queue with one consumer. */
  ordering: 'none' | 'per-key' | 'fifo';
  /** subscribe / publishEvent fan-out. */
  pubsub: 'native' | 'emulated' | 'none';
  /** extend() really renews a lease. */
  leaseExtension: boolean;
  /** 'at-most-once': a job whose consumer dies mid-job is lost (plain BLPOP). */
  delivery: 'at-least-once' | 'at-most-once';
  /** Another process (a second worker, the API) reaches the same queues; false only for the in-process memory broker. */
  crossProcess: boolean;
}

/**
 * A message broker seen through one small contract. Drivers move bytes and carry out
 * ack / retry / deadLetter with the broker's native mechanism; retry policy, backoff,
 * validation and idempotency live in the worker runtime of core.
 *
 * All methods may be called concurrently. Queue and topic names are logical (`email`); each
 * driver maps them to its own naming (`polyqueue:email`, `polyqueue.email`, ...).
 */
export interface Broker {
  readonly name: string;
  readonly capabilities: Capabilities;
  /**
   * Brokers whose redelivery after a crash is a lease (capabilities.redeliveryAfterCrash
   * 'lease'): how long a delivery stays with its consumer without extend(). The runtime leases
   * its idempotency claims as long and renews both while a handler runs.
   */
  readonly leaseMs?: number;
  /** Resolves only when the broker has accepted every message durably. */
  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void>;
  /** Calls handler for each delivery until options.signal aborts; resolves after draining. */
  consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void>;
  /** Every group subscribed to the topic receives the event once. */
  publishEvent(topic: string, event: Envelope): Promise<void>;
  /**
   * Joins `group` on `topic`: every group receives every event published after onReady,
   * one member of a group handles it. Resolves after options.signal aborts and draining.
   */
  subscribe(topic: string, group: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void>;
  stats(queue: string): Promise<QueueStats>;
  deadLetters(queue: string): DeadLetterStore;
  /** Throws when the broker cannot be reached (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** What a queue's configuration requires; assertCapabilities fails fast at start-up. */
export interface QueueRequirements {
  delayedDelivery?: boolean;
  priority?: boolean;
  redeliveryAfterCrash?: boolean;
  pubsub?: boolean;
}

export function assertCapabilities(broker: Broker, queue: string, needs: QueueRequirements): void {
  const c = broker.capabilities;
  const missing: string[] = [];
  if (needs.delayedDelivery && c.delayedDelivery === 'none') missing.push('delayed delivery');
  if (needs.priority && c.priority === 'none') missing.push('priority');
  if (needs.redeliveryAfterCrash && c.redeliveryAfterCrash === 'none')
    missing.push('redelivery after a crash');
  if (needs.pubsub && c.pubsub === 'none') missing.push('pub/sub');
  if (missing.length > 0) {
    throw new Error(`queue "${queue}" needs ${missing.join(', ')}, which broker ${broker.name} cannot do`);
  }
}
