import {
  backoffDelay,
  type ConsumeOptions,
  type DeliveryHandler,
  errorMessage,
  type Logger,
} from '@polyqueue/core';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { AckCoalescer } from './ack-coalescer';
import type { QueueNames } from './config';
import { type AmqpConnection, closeQuietly } from './connection';
import { deliverAtOf, tierIndexFor } from './delay';
import { RabbitDelivery } from './delivery';
import { headersOf, propertiesOf, publishRouted } from './publisher';

export interface ConsumerSpec {
  connection: AmqpConnection;
  names: QueueNames;
  /** Declares what the consumer needs (queues, a group's binding); run before every (re)start. */
  prepare: () => Promise<void>;
  handler: DeliveryHandler;
  options: ConsumeOptions;
  logger: Logger;
  reconnectMaxMs: number;
  /** AMQP_PREFETCH: deliveries held unacked (at least `concurrency`); the extra wait here for a slot. */
  prefetch: number;
  /** Deliveries held by handlers, shared by the queue's consumers, for stats().inFlight. */
  inFlight: { count: number };
  /** Called when the queue vanished under a consumer, so the next start declares it again. */
  forgetTopology: () => void;
}

export interface RunningConsumer {
  /** Resolves once stopped (signal aborted or stop()) and every in-flight handler has finished. */
  finished: Promise<void>;
  /** Stops as an aborted signal would: used by broker.close(). */
  stop: () => Promise<void>;
}

/** How long an unsettled delivery waits before it is requeued, so a failing store does not spin. */
const UNSETTLED_REQUEUE_PAUSE_MS = 1_000;

/**
 * Consumes one queue with manual acks and a prefetch of max(concurrency, AMQP_PREFETCH), by
 * default the concurrency: RabbitMQ hands this consumer no more than it has handlers. A larger
 * AMQP_PREFETCH lets deliveries wait here for a slot, in arrival order (config.ts says what that
 * costs). Acks are coalesced per turn of the event loop (ack-coalescer.ts). When the channel or connection is lost (broker
 * restart, channel error, queue deleted) it starts again: re-declares the topology, reopens a
 * channel and consumes, with backoff, reporting the outage through onConnectionChange and the
 * log until it is back. Messages the lost channel held unacked are requeued by the broker.
 * The first start failing (say, PRECONDITION_FAILED on the queue's arguments) rejects at once.
 */
export function runConsumer(spec: ConsumerSpec): RunningConsumer {
  const { connection, names, options, logger } = spec;
  const { signal } = options;
  // Messages taken and not yet finished (handled, hopped or requeued): a count and one waiter
  // rather than a set of promises, so the consume path allocates nothing per message for it.
  let active = 0;
  let onIdle: (() => void) | undefined;
  let session: { channel: ConfirmChannel; consumerTag: string; acks: AckCoalescer } | undefined;
  // Handlers running, and the deliveries held for a free slot (their channel's acks with them).
  let handling = 0;
  let waiting: Array<{ channel: ConfirmChannel; acks: AckCoalescer; message: ConsumeMessage }> = [];
  let restarting = false;
  let stopping = false;
  let wakeRestart: (() => void) | undefined;
  let finish!: () => void;
  let fail!: (error: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });

  const unsubscribe = connection.onChange((connected, error) => {
    options.onConnectionChange?.(connected, error);
    if (connected) wakeRestart?.();
  });

  async function start(): Promise<void> {
    await spec.prepare();
    const channel = await connection.confirmChannel();
    try {
      const acks = new AckCoalescer(channel);
      channel.on('close', () => {
        // What this channel held unacked is requeued by the broker: the held ones are not run.
        dropWaiting(channel);
        if (session?.channel !== channel) return;
        session = undefined;
        if (!stopping) {
          logger.warn({ queue: names.work }, 'RabbitMQ consumer channel closed; starting again');
          void restart();
        }
      });
      await channel.prefetch(Math.max(options.concurrency, spec.prefetch));
      const { consumerTag } = await channel.consume(
        names.work,
        (message) => {
          if (message) onMessage(channel, acks, message);
          else onCancelledByBroker(channel);
        },
        { noAck: false },
      );
      session = { channel, consumerTag, acks };
      if (stopping) {
        // stop() ran while this start was under way and found nothing to cancel.
        session = undefined;
        await closeQuietly(channel);
      }
    } catch (error) {
      await closeQuietly(channel);
      throw error;
    }
  }

  function onCancelledByBroker(channel: ConfirmChannel): void {
    // The queue was deleted (or a quorum leader moved away): declare it again and resubscribe.
    logger.warn({ queue: names.work }, 'RabbitMQ cancelled the consumer; declaring the queue again');
    spec.forgetTopology();
    void closeQuietly(channel); // its 'close' handler restarts
  }

  async function restart(): Promise<void> {
    if (restarting) return;
    restarting = true;
    try {
      for (let attempt = 0; !stopping; attempt++) {
        try {
          await start();
          if (attempt > 0 || !connection.connected)
            logger.info({ queue: names.work }, 'RabbitMQ consumer resumed');
          return;
        } catch (error) {
          logger.error(
            { err: error, queue: names.work, attempt: attempt + 1 },
            'RabbitMQ consumer could not start again',
          );
          options.onConnectionChange?.(false, error as Error);
          const delay = Math.max(50, backoffDelay(attempt + 1, { baseMs: 200, maxMs: spec.reconnectMaxMs }));
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, delay);
            function done() {
              clearTimeout(timer);
              wakeRestart = undefined;
              resolve();
            }
            wakeRestart = done;
          });
        }
      }
    } finally {
      restarting = false;
    }
  }

  function onMessage(channel: ConfirmChannel, acks: AckCoalescer, message: ConsumeMessage): void {
    acks.received(message);
    if (stopping) {
      // Arrived between basic.cancel and its reply: give it back for another consumer.
      giveBack(channel, acks, message);
      return;
    }
    active++;
    const deliverAt = deliverAtOf(message.properties.headers);
    if (deliverAt !== undefined && deliverAt > Date.now()) void hop(channel, acks, message, deliverAt);
    else if (handling < options.concurrency) void handle(channel, acks, message);
    else waiting.push({ channel, acks, message });
  }

  /** A handler finished: the oldest held delivery takes its slot, or goes back when stopping. */
  function nextWaiting(): void {
    const next = waiting.shift();
    if (!next) return;
    if (stopping) {
      giveBack(next.channel, next.acks, next.message);
      done();
      for (const rest of waiting.splice(0)) {
        giveBack(rest.channel, rest.acks, rest.message);
        done();
      }
      return;
    }
    void handle(next.channel, next.acks, next.message);
  }

  function dropWaiting(channel: ConfirmChannel): void {
    const kept = waiting.filter((w) => w.channel !== channel);
    const dropped = waiting.length - kept.length;
    waiting = kept;
    for (let i = 0; i < dropped; i++) done();
  }

  function giveBack(channel: ConfirmChannel, acks: AckCoalescer, message: ConsumeMessage): void {
    acks.release(message);
    safely(() => channel.nack(message, false, true));
  }

  /** Counts a message taken by onMessage as finished; wakes drain() when it was the last. */
  function done(): void {
    if (--active === 0) onIdle?.();
  }

  /** Sends a delayed message that came back early from its tier on its next hop. */
  async function hop(
    channel: ConfirmChannel,
    acks: AckCoalescer,
    message: ConsumeMessage,
    deliverAt: number,
  ): Promise<void> {
    try {
      const tier = names.tiers[tierIndexFor(deliverAt - Date.now())]!;
      const options = propertiesOf(message.properties, headersOf(message));
      await publishRouted(channel, { exchange: '', routingKey: tier, body: message.content, options });
      acks.ack(message);
    } catch (error) {
      logger.warn({ err: error, queue: names.work }, 'could not move a delayed message to its next tier');
      await requeueLater(channel, acks, message);
    } finally {
      done();
    }
  }

  async function handle(channel: ConfirmChannel, acks: AckCoalescer, message: ConsumeMessage): Promise<void> {
    const { inFlight } = spec;
    handling++;
    try {
      const delivery = new RabbitDelivery(channel, acks, message, names);
      inFlight.count++;
      try {
        await spec.handler(delivery);
      } catch (error) {
        logger.error(
          { err: error, queue: names.work, messageId: delivery.messageId },
          'delivery handler threw',
        );
      } finally {
        inFlight.count--;
      }
      if (!delivery.acked) {
        logger.warn(
          { queue: names.work, messageId: delivery.messageId },
          'delivery left unsettled; requeueing it',
        );
        await requeueLater(channel, acks, message);
      }
    } finally {
      handling--;
      done();
      nextWaiting();
    }
  }

  /** Gives an unsettled message back to the queue, after a pause unless the consumer is stopping. */
  async function requeueLater(
    channel: ConfirmChannel,
    acks: AckCoalescer,
    message: ConsumeMessage,
  ): Promise<void> {
    if (!stopping) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, UNSETTLED_REQUEUE_PAUSE_MS);
        function done() {
          clearTimeout(timer);
          stopWaiters.delete(done);
          resolve();
        }
        stopWaiters.add(done);
      });
    }
    // A publish to a tier or the dead-letter queue may have failed because it was deleted.
    spec.forgetTopology();
    await spec
      .prepare()
      .catch((error) => logger.warn({ err: error, queue: names.work }, 'could not declare the queue again'));
    // If the channel is gone the broker has requeued the message already.
    giveBack(channel, acks, message);
  }

  /** Pauses to cut short when stopping. */
  const stopWaiters = new Set<() => void>();

  async function drain(): Promise<void> {
    if (stopping) return finished;
    stopping = true;
    wakeRestart?.();
    for (const wake of [...stopWaiters]) wake();
    const current = session;
    if (current) {
      try {
        await current.channel.cancel(current.consumerTag);
      } catch {
        // The channel is already gone; nothing more arrives on it.
      }
    }
    // Held deliveries no handler has started go back for another consumer now.
    for (const rest of waiting.splice(0)) {
      giveBack(rest.channel, rest.acks, rest.message);
      done();
    }
    if (active > 0) {
      await new Promise<void>((resolve) => {
        onIdle = resolve;
      });
    }
    session = undefined;
    current?.acks.flush();
    if (current) await closeQuietly(current.channel);
    unsubscribe();
    finish();
    return finished;
  }

  if (signal.aborted) {
    unsubscribe();
    return { finished: Promise.resolve(), stop: async () => {} };
  }
  start().then(
    () => {
      if (stopping) return;
      if (signal.aborted) {
        void drain();
        return;
      }
      signal.addEventListener('abort', () => void drain(), { once: true });
      options.onReady?.();
    },
    (error: unknown) => {
      stopping = true;
      unsubscribe();
      fail(
        new Error(`cannot consume RabbitMQ queue "${names.work}": ${errorMessage(error)}`, { cause: error }),
      );
    },
  );
  return { finished, stop: drain };
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // The channel closed; the broker requeues what it held.
  }
}
