import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Broker, ConsumeOptions, Delivery, DeliveryHandler } from './broker';
import { errorMessage } from './errors';
import { silentLogger } from './logger';
import type { Limits, QueueLimits } from './queue-limits';
import { sleep } from './sleep';
import { DEFAULT_LEASE_MS } from './worker';

/** How often a consumer reads the limits: a change is obeyed within this plus one read. */
export const DEFAULT_LIMITS_POLL_MS = 500;

export interface LimitGateOptions {
  limits: Pick<QueueLimits, 'limits' | 'admit' | 'renew' | 'release'>;
  /**
   * How long a concurrency slot stays taken without renewal (a SIGKILLed worker's slots come
   * back after it), and the delivery lease a waiting job keeps extending: the worker's leaseMs.
   * Defaults to the broker's leaseMs, else DEFAULT_LEASE_MS.
   */
  leaseMs?: number;
  /** DEFAULT_LIMITS_POLL_MS when absent. */
  pollMs?: number;
  logger?: Logger;
}

/**
 * The broker, with consume() obeying the queue's cluster-wide limits (QueueLimits) on every
 * driver the same way: each delivery waits for a token and a slot before the handler (the
 * worker runtime) gets it, so nothing about the job (claim, record, handler) starts before.
 *
 * A queue without limits costs nothing per job: the limits are read every pollMs, and only a
 * limited queue's deliveries are admitted one by one. A waiting delivery keeps its lease
 * (extend() every third of leaseMs, as the worker's heartbeat does for a running job). When
 * the consumer stops (shutdown, or a pause through pausable()) a delivery still waiting goes
 * back to the queue at once with retry(0), never run, never lost. The slots of running jobs are
 * renewed every third of leaseMs and released when the handler ends. A store that cannot be
 * read keeps the last limits and holds waiting jobs (logged once per outage): an outage never
 * lifts a limit. Put pausable() outside it, so a pause also sends the waiting jobs back.
 */
export function limited<B extends Broker>(broker: B, options: LimitGateOptions): B {
  const consume = (queue: string, handler: DeliveryHandler, consumeOptions: ConsumeOptions) =>
    consumeWithinLimits(broker, queue, handler, consumeOptions, options);
  return new Proxy(broker, {
    get(target, property) {
      if (property === 'consume') return consume;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** The job `key` of an envelope body (per-key concurrency), read only for a queue that needs it. */
function jobKey(body: string): string | undefined {
  try {
    const key = (JSON.parse(body) as { key?: unknown }).key;
    return typeof key === 'string' && key.length > 0 ? key : undefined;
  } catch {
    // Not JSON: the worker dead-letters it; it has no key to count.
    return undefined;
  }
}

async function consumeWithinLimits(
  broker: Broker,
  queue: string,
  handler: DeliveryHandler,
  options: ConsumeOptions,
  gate: LimitGateOptions,
): Promise<void> {
  const { signal } = options;
  const store = gate.limits;
  const pollMs = gate.pollMs ?? DEFAULT_LIMITS_POLL_MS;
  const leaseMs = gate.leaseMs ?? broker.leaseMs ?? DEFAULT_LEASE_MS;
  const logger = gate.logger ?? silentLogger();
  const extendsDelivery = broker.capabilities.leaseExtension;
  let unreadable = false;
  const outage = (error: unknown, what: string) => {
    if (!unreadable)
      logger.warn(
        { queue, err: error },
        `cannot ${what} (${errorMessage(error)}); holding to the last limits`,
      );
    unreadable = true;
  };
  let current: Limits | undefined;
  const read = async () => {
    try {
      current = (await store.limits()).get(queue);
      if (unreadable) logger.info({ queue }, 'queue limits readable again');
      unreadable = false;
    } catch (error) {
      outage(error, 'read the queue limits');
    }
  };
  await read();

  // Runs until consume() has resolved, not until the signal: slots of jobs draining stay renewed.
  const watch = new AbortController();
  /** The slots of the jobs running now, renewed together. */
  const held = new Set<string>();
  /** The deliveries waiting for admission, with when their lease was last extended. */
  const waiting = new Map<Delivery, number>();
  /** Keeps every waiting delivery leased, as the worker's heartbeat does for running jobs. */
  const extendWaiting = () => {
    if (!extendsDelivery) return;
    const now = Date.now();
    for (const [delivery, extendedAt] of waiting) {
      if (now - extendedAt < leaseMs / 3) continue;
      waiting.set(delivery, now);
      delivery
        .extend(leaseMs)
        .catch((error) =>
          logger.warn({ err: error, messageId: delivery.messageId }, 'lease extension failed'),
        );
    }
  };
  const watching = (async () => {
    let renewedAt = Date.now();
    while (!watch.signal.aborted) {
      await sleep(Math.min(pollMs, leaseMs / 6), watch.signal);
      if (watch.signal.aborted) return;
      extendWaiting();
      await read();
      if (held.size > 0 && Date.now() - renewedAt >= leaseMs / 3) {
        renewedAt = Date.now();
        await store
          .renew(queue, [...held], leaseMs)
          .catch((error) => logger.warn({ queue, err: error }, 'renewing the concurrency slots failed'));
      }
    }
  })();

  /**
   * This consumer's waiting deliveries ask the store one at a time, in the order they came: one
   * round trip per token and worker rather than one per waiting job, which would only add load
   * to the store and to this process. Not with per-key limits: there a job whose key is at its
   * limit must not hold up the other keys' jobs behind it.
   */
  let turn: Promise<unknown> = Promise.resolve();
  function admitted(delivery: Delivery, holder: string): Promise<boolean | 'slot'> {
    if (current?.perKeyConcurrency !== undefined) return waitForAdmission(delivery, holder);
    const mine = turn.then(() => waitForAdmission(delivery, holder));
    turn = mine.catch(() => {});
    return mine;
  }

  /** Waits for admission; false when the consumer stopped first (the delivery went back). */
  async function waitForAdmission(delivery: Delivery, holder: string): Promise<boolean | 'slot'> {
    const key = current?.perKeyConcurrency !== undefined ? jobKey(delivery.body) : undefined;
    while (!signal.aborted) {
      if (!current) return true;
      try {
        const answer = await store.admit(queue, { holder, leaseMs, ...(key !== undefined ? { key } : {}) });
        if (answer.granted) return answer.slot ? 'slot' : true;
        await sleep(Math.min(answer.retryInMs, pollMs), signal);
      } catch (error) {
        outage(error, 'take a token or a slot');
        await sleep(pollMs, signal);
      }
    }
    // Stopped or paused while waiting: back to the queue now rather than after its lease.
    await delivery
      .retry(0)
      .catch((error) =>
        logger.warn({ err: error, messageId: delivery.messageId }, 'could not hand a waiting job back'),
      );
    return false;
  }

  async function admitThenHandle(delivery: Delivery): Promise<void> {
    const holder = randomUUID();
    waiting.set(delivery, Date.now());
    let admission: boolean | 'slot';
    try {
      admission = await admitted(delivery, holder);
    } finally {
      waiting.delete(delivery);
    }
    if (!admission) return;
    if (admission === 'slot') held.add(holder);
    try {
      await handler(delivery);
    } finally {
      if (admission === 'slot') {
        held.delete(holder);
        await store
          .release(queue, holder)
          .catch((error) =>
            logger.warn(
              { queue, err: error },
              'releasing a concurrency slot failed; it frees after its lease',
            ),
          );
      }
    }
  }

  const gated: DeliveryHandler = (delivery) => (current ? admitThenHandle(delivery) : handler(delivery));
  try {
    await broker.consume(queue, gated, options);
  } finally {
    watch.abort();
    await watching;
  }
}
