import { ConfigError } from './config';
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
 * runtime in core decides which. A second outcome is refused with AlreadySettledError
 * (settle.ts) before the driver touches the broker, so the first one stands. A driver never
 * inspects the body beyond what its native mechanism needs.
 */
export interface Delivery {
  /** The broker's own id for this message; the envelope id of a foreign `{type, payload}` body. */
  readonly messageId: string;
  /** The raw UTF-8 body, normally an envelope (decodeEnvelope turns it into one). */
  readonly body: string;
  /**
   * 1 on the first delivery; retry() makes the next delivery attempt + 1. Taken from the
   * broker's own delivery counter where it has one (so a crash redelivery counts too), else
   * from the envelope's `attempt` (docs/wire-format.md#attempts).
   */
  readonly attempt: number;
  /**
   * Optional hint, a speed-up with no effect on behaviour. A driver sets it (to true) only where
   * `attempt` is, by construction, the decoded envelope's own `attempt`: the driver keeps the
   * count in the body and retry() republishes the body with it raised (Kafka queues today). The
   * runtime then reads the attempt off the envelope it decodes anyway, and the driver need not
   * parse the body a second time per message just to fill `attempt` (it may compute it lazily).
   * Absent or false: the runtime reads `attempt`. A driver whose attempt comes from a broker
   * counter (a table column, SQS's receive count, a stream's delivery count) must not set it.
   */
  readonly attemptInEnvelope?: boolean;
  /**
   * Done: the broker forgets the message. How durable a resolved ack() is differs by driver and
   * is declared in `capabilities.ackDurable` (see there).
   */
  ack(): Promise<void>;
  /**
   * Deliver again no earlier than delayMs from now, with attempt + 1. Every driver honours the
   * delay, whatever its `delayedDelivery` (which is about publish): natively, or by holding the
   * message invisible, or through a retry topic; a broker limit on the delay (SQS: 12 h from the
   * receive on FIFO queues) is stated in the driver's header.
   */
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
 * checks by these flags, never by broker name; a process that needs one the broker lacks fails
 * at start-up (assertCapabilities).
 */
export interface Capabilities {
  /**
   * `delayMs` on publish. (retry(delayMs) is honoured by every driver: see Delivery.retry.)
   * A queue whose producers publish with delays needs it.
   */
  delayedDelivery: 'native' | 'emulated' | 'none';
  /** high/normal/low honoured among ready messages. */
  priority: 'native' | 'emulated' | 'none';
  /** A message whose consumer died unacked comes back ('lease': after a lease or visibility timeout). */
  redeliveryAfterCrash: 'lease' | 'connection' | 'none';
  /** Order kept: none, per key, or for the whole queue with one consumer. */
  ordering: 'none' | 'per-key' | 'fifo';
  /**
   * How BrokerEvents (publishEvent / subscribe) is carried out; 'none' exactly when the broker
   * does not implement BrokerEvents.
   */
  pubsub: 'native' | 'emulated' | 'none';
  /** extend() really renews a lease. */
  leaseExtension: boolean;
  /**
   * 'at-most-once': a job whose consumer dies mid-job is lost (plain BLPOP). A worker process
   * logs a warning at start-up on such a broker (app-runtime, run-worker.ts). Not the same as
   * redeliveryAfterCrash 'none': the in-process memory broker has no crash to survive apart
   * from its own process, and is at-least-once while that lives.
   */
  delivery: 'at-least-once' | 'at-most-once';
  /**
   * What a resolved ack() promises. 'on-resolve': the broker has recorded the ack when the
   * promise resolves (a committed DELETE, an XACK or a Lua script that ran, a DeleteMessage
   * answered), so the message is never handed out again even if this process is SIGKILLed the
   * next instant. 'eventually': the ack is recorded shortly after it resolves (the next write
   * batch, a coalesced offset commit, a frame still in the socket buffer); a crash in between
   * hands the message out again once the lease runs out or the connection drops, like any job
   * the crash interrupted, and the runtime's idempotency key makes that a no-op.
   * The conformance scenario "ack durability" checks it with a SIGKILLed consumer.
   */
  ackDurable: 'on-resolve' | 'eventually';
  /** Another process (a second worker, the API) reaches the same queues; false only for the in-process memory broker. */
  crossProcess: boolean;
}

/**
 * A message broker seen through one small contract: what every caller needs, and all a driver
 * must implement. Drivers move bytes and carry out ack / retry / deadLetter with the broker's
 * native mechanism; retry policy, backoff, validation and idempotency live in the worker
 * runtime of core (createWorker needs nothing more than this).
 *
 * What only some callers need lives in small interfaces of its own, which a driver implements
 * beside this one and declares in its class header (`implements Broker, BrokerEvents,
 * BrokerAdmin`): BrokerEvents (pub/sub), BrokerAdmin (stats, dead letters, ping). A caller asks
 * for the one it needs in its parameter type, and code holding a plain Broker checks with
 * hasEvents / hasAdmin. Later optional parts (pause, rate limits, cancellation) go the same way.
 *
 * All methods may be called concurrently. Queue and topic names are logical (`email`); each
 * driver maps them to its own naming (`polyqueue:email`, `polyqueue.email`, ...).
 */
export interface Broker {
  /** The BROKER name (`redis-streams`), for logs and messages. */
  readonly name: string;
  readonly capabilities: Capabilities;
  /**
   * Brokers whose redelivery after a crash is a lease (capabilities.redeliveryAfterCrash
   * 'lease'): how long a delivery stays with its consumer without extend(). The runtime leases
   * its idempotency claims as long and renews both while a handler runs. Absent elsewhere.
   */
  readonly leaseMs?: number;
  /**
   * Resolves only when the broker has accepted every message durably (publisher confirms,
   * acks=all, a COMMIT, ...); rejects otherwise, and then any of them may or may not be queued.
   */
  publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void>;
  /**
   * Calls handler for each delivery, at most options.concurrency at once, until options.signal
   * aborts; then stops fetching and resolves once every handler in flight has finished. Rejects
   * only when it cannot start (a lost connection is reported through onConnectionChange and
   * retried).
   */
  consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void>;
  /**
   * Releases the connections; consumers still running end. Deliveries not yet settled come back
   * as after a crash (redeliveryAfterCrash). Safe to call twice.
   */
  close(): Promise<void>;
}

/** Pub/sub fan-out: the job-events topic. capabilities.pubsub says how it is carried out. */
export interface BrokerEvents {
  /** Every group subscribed to the topic receives the event once (at least once, deduplicate by envelope id). */
  publishEvent(topic: string, event: Envelope): Promise<void>;
  /**
   * Joins `group` on `topic`: every group receives every event published after onReady,
   * one member of a group handles it. Resolves after options.signal aborts and draining.
   */
  subscribe(topic: string, group: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<void>;
}

/** What operators and probes need: depth, dead letters, reachability (CLI, /metrics, /readyz). */
export interface BrokerAdmin {
  /** A snapshot of the queue's counts; approximate where the broker only estimates (SQS). */
  stats(queue: string): Promise<QueueStats>;
  /** The queue's dead letters: list, redrive, purge. */
  deadLetters(queue: string): DeadLetterStore;
  /** Resolves when the broker can be reached; throws with the reason otherwise (for /readyz). */
  ping(): Promise<void>;
}

/**
 * Every part of the contract: what each driver in this repository implements, what the
 * registry (@polyqueue/brokers) hands out, and what the conformance suite tests.
 */
export type CompleteBroker = Broker & BrokerEvents & BrokerAdmin;

/** The broker implements BrokerEvents (and does not declare pubsub 'none'). */
export function hasEvents<B extends Broker>(broker: B): broker is B & BrokerEvents {
  const b = broker as B & Partial<BrokerEvents>;
  return (
    broker.capabilities.pubsub !== 'none' &&
    typeof b.publishEvent === 'function' &&
    typeof b.subscribe === 'function'
  );
}

/** The broker implements BrokerAdmin. */
export function hasAdmin<B extends Broker>(broker: B): broker is B & BrokerAdmin {
  const b = broker as B & Partial<BrokerAdmin>;
  return typeof b.stats === 'function' && typeof b.deadLetters === 'function' && typeof b.ping === 'function';
}

/**
 * A broker cannot do what a queue or a process needs. A ConfigError, so a process's start-up
 * prints this one line and exits 1 (the choice of BROKER is configuration).
 */
export class CapabilityError extends ConfigError {
  override name = 'CapabilityError';
}

/** What a queue or process requires of its broker; assertCapabilities fails fast at start-up. */
export interface QueueRequirements {
  /** Producers publish with delayMs. */
  delayedDelivery?: boolean;
  /** Producers publish with priority and expect it honoured. */
  priority?: boolean;
  /** A job whose worker dies must come back. */
  redeliveryAfterCrash?: boolean;
  /** Events are published or subscribed to: BrokerEvents, with pubsub not 'none'. */
  pubsub?: boolean;
}

/**
 * Throws a CapabilityError naming every requirement the broker cannot meet, with why it is
 * needed when `reasons` says. Called where a queue's needs are known: a worker process's
 * start-up (app-runtime, run-worker.ts).
 */
export function assertCapabilities(
  broker: Broker,
  queue: string,
  needs: QueueRequirements,
  reasons: Partial<Record<keyof QueueRequirements, string>> = {},
): void {
  const c = broker.capabilities;
  const missing: string[] = [];
  const need = (key: keyof QueueRequirements, what: string) =>
    missing.push(reasons[key] ? `${what} (${reasons[key]})` : what);
  if (needs.delayedDelivery && c.delayedDelivery === 'none') need('delayedDelivery', 'delayed delivery');
  if (needs.priority && c.priority === 'none') need('priority', 'priority');
  if (needs.redeliveryAfterCrash && c.redeliveryAfterCrash === 'none')
    need('redeliveryAfterCrash', 'redelivery after a crash');
  if (needs.pubsub && !hasEvents(broker)) need('pubsub', 'pub/sub');
  if (missing.length > 0) {
    throw new CapabilityError(
      `queue "${queue}" needs ${missing.join(', ')}, which broker ${broker.name} cannot do; choose another BROKER`,
    );
  }
}
