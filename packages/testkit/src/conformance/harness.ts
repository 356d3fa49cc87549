import {
  type Broker,
  type BrokerAdmin,
  type Capabilities,
  type CompleteBroker,
  type ConsumeOptions,
  createEnvelope,
  createWorker,
  type DeliveryHandler,
  type Envelope,
  type OutgoingMessage,
  type QueueStats,
  type WorkerOptions,
} from '@polyqueue/core';
import type { TestContext } from 'vitest';
import { type RunningConsumer, startConsumer } from '../consumers';
import { deferred, eventually } from '../spy';
import type { ConformanceOptions } from './options';

/**
 * One scenario of the suite: a name (the test's), when it applies, and what it checks. A
 * scenario that does not apply to a broker is skipped, by capability or by what the driver's
 * test declares, never by broker name.
 */
export interface Scenario {
  name: string;
  /** Whether the scenario applies; every scenario applies when absent. */
  applies?: (capabilities: Capabilities, options: ConformanceOptions) => boolean;
  /** The test's timeout, when longer than vitest's default. */
  timeoutMs?: number;
  run(h: Harness, ctx: TestContext): Promise<void>;
}

/**
 * What every scenario works with: the connected broker, consumers and workers that are stopped
 * after each test, and waits bounded by the driver's timeouts.
 */
export class Harness {
  /** Connected in the suite's beforeAll; the suite tests every part of the contract. */
  broker!: CompleteBroker;
  /** Stopped after each test. */
  readonly consumers: RunningConsumer[] = [];
  /** Connections opened by another(); closed after the suite. */
  readonly extraBrokers: CompleteBroker[] = [];
  readonly timeoutMs: number;
  readonly leaseMs: number;
  /** The driver's variables plus BROKER and the driver module: what a forked process needs to connect. */
  readonly env: Record<string, string>;

  constructor(readonly options: ConformanceOptions) {
    this.timeoutMs = options.timeoutMs ?? 20_000;
    this.leaseMs = options.leaseMs ?? 2_000;
    this.env = {
      ...options.env,
      BROKER: options.broker,
      ...(options.driverModule ? { POLYQUEUE_DRIVER_MODULE: options.driverModule } : {}),
    };
  }

  async connect(): Promise<CompleteBroker> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const b = await Promise.race([
        this.options.createBroker(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 15 s')), 15_000);
        }),
      ]);
      await b.ping();
      return b;
    } catch (error) {
      throw new Error(`cannot reach ${this.options.serverHint}: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A second connection to the same server, closed after the suite. */
  async another(): Promise<CompleteBroker> {
    const b = await this.connect();
    this.extraBrokers.push(b);
    return b;
  }

  /** The worker runtime of core on this broker; stopped after the test like the consumers. */
  runWorker(options: Omit<WorkerOptions, 'broker'>, on: Broker = this.broker): RunningConsumer {
    const worker = createWorker({ broker: on, ...options });
    const controller = new AbortController();
    const attached = deferred();
    const done = worker.run(controller.signal, attached.resolve);
    const running: RunningConsumer = {
      ready: attached.promise,
      done,
      signal: controller.signal,
      async stop() {
        controller.abort();
        await done;
      },
    };
    this.consumers.push(running);
    return running;
  }

  consume(b: Broker, queue: string, handler: DeliveryHandler, concurrency = 4): RunningConsumer {
    const c = startConsumer(b, queue, handler, concurrency);
    this.consumers.push(c);
    return c;
  }

  async statsEventually(
    queue: string,
    expected: Partial<QueueStats>,
    what: string,
    b: BrokerAdmin = this.broker,
  ): Promise<QueueStats> {
    const want = { ...expected };
    return eventually(
      () => b.stats(queue),
      (s) => Object.entries(want).every(([k, v]) => s[k as keyof QueueStats] === v),
      `${what}: stats ${JSON.stringify(want)}`,
      this.timeoutMs,
    );
  }

  async stopConsumers(): Promise<void> {
    await Promise.all(this.consumers.splice(0).map((c) => c.stop().catch(() => {})));
  }

  async close(): Promise<void> {
    await Promise.all(this.extraBrokers.splice(0).map((b) => b.close().catch(() => {})));
    await this.broker?.close();
  }
}

export function job(payload: Record<string, unknown> = {}, type = 'test_job'): Envelope {
  return createEnvelope(type, payload);
}

export function messages(envelopes: Envelope[], extra: Partial<OutgoingMessage> = {}): OutgoingMessage[] {
  return envelopes.map((envelope) => ({ envelope, ...extra }));
}

export const EMPTY: QueueStats = { ready: 0, inFlight: 0, delayed: 0, dead: 0 };

/**
 * The broker, with the messageId of every delivery its consume() hands out recorded in `seen`
 * before the handler (the worker runtime) gets it.
 */
export function recordingDeliveries(broker: Broker, seen: string[]): Broker {
  return new Proxy(broker, {
    get(target, property) {
      if (property === 'consume') {
        return (queue: string, handler: DeliveryHandler, options: ConsumeOptions) =>
          target.consume(
            queue,
            (delivery) => {
              seen.push(delivery.messageId);
              return handler(delivery);
            },
            options,
          );
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
