import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Broker, BrokerEvents, DeliveryHandler } from '@polyqueue/core';
import { deferred } from './spy';

export interface RunningConsumer {
  /** Resolves once the consumer is attached; rejects if consume() ends or fails first. */
  ready: Promise<void>;
  /** Aborts and resolves when consume() has drained. */
  stop(): Promise<void>;
  /** consume()'s own promise. */
  done: Promise<void>;
  signal: AbortSignal;
}

export function startConsumer(
  broker: Broker,
  queue: string,
  handler: DeliveryHandler,
  concurrency = 4,
): RunningConsumer {
  const controller = new AbortController();
  const attached = deferred();
  const done = broker.consume(queue, handler, {
    concurrency,
    signal: controller.signal,
    onReady: attached.resolve,
  });
  return wrap(controller, attached.promise, done);
}

export function startSubscriber(
  broker: BrokerEvents,
  topic: string,
  group: string,
  handler: DeliveryHandler,
): RunningConsumer {
  const controller = new AbortController();
  const attached = deferred();
  const done = broker.subscribe(topic, group, handler, {
    concurrency: 2,
    signal: controller.signal,
    onReady: attached.resolve,
  });
  return wrap(controller, attached.promise, done);
}

function wrap(controller: AbortController, attached: Promise<void>, done: Promise<void>): RunningConsumer {
  done.catch(() => {}); // observed through ready/stop; avoid an unhandled rejection meanwhile
  const endedEarly = done.then(() => {
    throw new Error('consume() resolved before the consumer was ready');
  });
  endedEarly.catch(() => {});
  return {
    ready: Promise.race([attached, endedEarly]),
    done,
    signal: controller.signal,
    async stop() {
      controller.abort();
      await done;
    },
  };
}

export interface CrashChild {
  ready: Promise<void>;
  /** Resolves with the id of the first job the child took (with ackFirst: once its ack() resolved). */
  got: Promise<string>;
  kill(): Promise<void>;
}

/**
 * Forks crash-child.ts: a consumer that takes a job and hangs until SIGKILLed; with ackFirst
 * it acks the job first and reports it once ack() has resolved.
 */
export function forkCrashChild(
  env: Record<string, string>,
  queue: string,
  options: { ackFirst?: boolean } = {},
): CrashChild {
  const script = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
  const child = fork(script, options.ackFirst ? [queue, 'ack'] : [queue], {
    execArgv: ['--import', 'tsx'],
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = deferred();
  const got = deferred<string>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const early = exited.then(() => {
    throw new Error('crash child exited on its own; see its output above');
  });
  early.catch(() => {});
  child.on('message', (m: { type: string; id?: string }) => {
    if (m.type === 'ready') ready.resolve();
    if (m.type === 'got' && m.id) got.resolve(m.id);
  });
  return {
    ready: Promise.race([ready.promise, early]),
    got: Promise.race([got.promise, early]),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
