import type { Logger } from 'pino';
import type { Broker, ConsumeOptions, DeliveryHandler } from './broker';
import { errorMessage } from './errors';
import { silentLogger } from './logger';
import type { QueueControls } from './queue-controls';
import { sleep } from './sleep';

/** How often a consumer reads the pause flags: a pause takes effect within this plus one read. */
export const DEFAULT_PAUSE_POLL_MS = 500;

export interface PauseGateOptions {
  controls: Pick<QueueControls, 'paused'>;
  /** DEFAULT_PAUSE_POLL_MS when absent. */
  pollMs?: number;
  logger?: Logger;
  /** Told when this process stops (true) or starts again (false) fetching a queue. */
  onChange?: (queue: string, paused: boolean) => void;
}

/**
 * The broker, with consume() obeying the cluster-wide pause flags (QueueControls) on every
 * driver the same way: while the queue is paused nothing is fetched from it.
 *
 * consume() reads the flags every pollMs (one read per poll). On a pause it aborts the signal
 * of the broker's consume() it is running, exactly as a graceful shutdown does: the driver
 * stops fetching and resolves once its in-flight handlers have finished, so no job is cut
 * short. On resume it calls the broker's consume() again. The caller's own signal still ends
 * everything, with the drain it asked for. A flag that cannot be read keeps the last state
 * (logged once per outage): a store outage neither pauses nor resumes a queue.
 *
 * onReady is called once: when the first consumer attaches, or at once when the queue is
 * paused at start (the worker is ready; it is waiting for a resume, not for a broker).
 * subscribe() (pub/sub) and everything else pass through unchanged.
 */
export function pausable<B extends Broker>(broker: B, options: PauseGateOptions): B {
  const consume = (queue: string, handler: DeliveryHandler, consumeOptions: ConsumeOptions) =>
    consumeUnlessPaused(broker, queue, handler, consumeOptions, options);
  return new Proxy(broker, {
    get(target, property) {
      if (property === 'consume') return consume;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function consumeUnlessPaused(
  broker: Broker,
  queue: string,
  handler: DeliveryHandler,
  options: ConsumeOptions,
  gate: PauseGateOptions,
): Promise<void> {
  const { signal } = options;
  const pollMs = gate.pollMs ?? DEFAULT_PAUSE_POLL_MS;
  const logger = gate.logger ?? silentLogger();
  let announced = false;
  const ready = () => {
    if (announced) return;
    announced = true;
    options.onReady?.();
  };
  let unreadable = false;
  /** Whether the queue is paused now; `fallback` (the last state) when the store cannot say. */
  const isPaused = async (fallback: boolean): Promise<boolean> => {
    try {
      const paused = (await gate.controls.paused()).has(queue);
      if (unreadable) logger.info({ queue }, 'pause flags readable again');
      unreadable = false;
      return paused;
    } catch (error) {
      if (!unreadable)
        logger.warn(
          { queue, err: error },
          `cannot read the pause flags (${errorMessage(error)}); keeping the queue ${fallback ? 'paused' : 'running'}`,
        );
      unreadable = true;
      return fallback;
    }
  };

  let paused = await isPaused(false);
  while (!signal.aborted) {
    if (paused) {
      logger.info({ queue }, 'queue paused: not fetching from it until it is resumed');
      gate.onChange?.(queue, true);
      ready();
      while (paused && !signal.aborted) {
        await sleep(pollMs, signal);
        if (!signal.aborted) paused = await isPaused(true);
      }
      if (signal.aborted) return;
      logger.info({ queue }, 'queue resumed: fetching again');
      gate.onChange?.(queue, false);
    }
    const round = new AbortController();
    const stop = () => round.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    const watching = (async () => {
      while (!round.signal.aborted) {
        await sleep(pollMs, round.signal);
        if (round.signal.aborted) return;
        if (await isPaused(false)) {
          paused = true;
          logger.info({ queue }, 'queue paused: stopping the consumer; jobs in flight finish');
          round.abort(new Error(`queue ${queue} paused`));
        }
      }
    })();
    try {
      await broker.consume(queue, handler, { ...options, signal: round.signal, onReady: ready });
    } finally {
      signal.removeEventListener('abort', stop);
      round.abort();
      await watching;
    }
    // The driver's consume() ended on its own, neither paused nor stopped: as without the gate.
    if (!paused) return;
  }
}
