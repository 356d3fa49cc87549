import { createBrokerFromEnv } from '@polyqueue/brokers';
import {
  AlreadySettledError,
  type Broker,
  type ConsumeOptions,
  createEnvelope,
  createWorker,
  type Delivery,
  type DeliveryHandler,
  type Envelope,
  MemoryIdempotencyStore,
  NonRetryableError,
  type OutgoingMessage,
  type QueueStats,
  type WorkerOptions,
} from '@polyqueue/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { forkCrashChild, type RunningConsumer, startConsumer, startSubscriber } from './consumers';
import { deferred, eventually, HandlerSpy } from './spy';

export interface ConformanceOptions {
  /** The BROKER name in the registry. */
  broker: string;
  /** The driver's variables; use short leases so the crash scenario is quick. */
  env: Record<string, string>;
  /** Which server and how to start it, for the failure message when it cannot be reached. */
  serverHint: string;
  /**
   * Writes a body straight to the queue with the broker's own client, the way a producer in
   * another language would (for the malformed and foreign-shape scenarios).
   */
  publishRaw: (queue: string, body: string) => Promise<void>;
  /** Stops and starts the real server; resolves when it accepts connections again. */
  restartServer?: () => Promise<void>;
  /**
   * Required with restartServer: whether the server, as this test runs it, keeps queued and
   * unacknowledged messages across that restart (RabbitMQ durable queues, Kafka, MySQL: true;
   * Redis without AOF, ElasticMQ in memory: false). Declared by the driver's test, never
   * guessed: when true the restart scenario loses no job; when false it only requires that
   * consuming resumes, and reports how many jobs the restart took.
   */
  durableAcrossRestart?: boolean;
  /** The lease (or visibility timeout) the env sets, in ms; bounds the crash scenario's wait. */
  leaseMs?: number;
  /** Messages in the batch scenario (default 1,000). */
  batchSize?: number;
  /** How long to wait for one expected delivery (default 20 s). */
  timeoutMs?: number;
}

let queueCounter = 0;
/** A fresh queue name per test: lower-case letters and digits, valid on every broker. */
export function uniqueQueueName(label: string): string {
  queueCounter += 1;
  return `${label}${queueCounter}x${Date.now().toString(36).slice(-5)}${Math.random().toString(36).slice(2, 6)}`;
}

function job(payload: Record<string, unknown> = {}, type = 'test_job'): Envelope {
  return createEnvelope(type, payload);
}

function messages(envelopes: Envelope[], extra: Partial<OutgoingMessage> = {}): OutgoingMessage[] {
  return envelopes.map((envelope) => ({ envelope, ...extra }));
}

const EMPTY: QueueStats = { ready: 0, inFlight: 0, delayed: 0, dead: 0 };

/**
 * The broker, with the messageId of every delivery its consume() hands out recorded in `seen`
 * before the handler (the worker runtime) gets it.
 */
function recordingDeliveries(broker: Broker, seen: string[]): Broker {
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

/**
 * The broker conformance suite. A driver's test calls it once with how to reach its server;
 * scenarios change their checks by broker.capabilities, never by broker name.
 */
export function runConformanceSuite(options: ConformanceOptions): void {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const leaseMs = options.leaseMs ?? 2_000;
  const env = { ...options.env, BROKER: options.broker };

  describe(`broker conformance: ${options.broker}`, () => {
    let broker: Broker;
    const consumers: RunningConsumer[] = [];
    const extraBrokers: Broker[] = [];

    async function connect(): Promise<Broker> {
      let timer: NodeJS.Timeout | undefined;
      try {
        const b = await Promise.race([
          createBrokerFromEnv(env),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('no answer within 15 s')), 15_000);
          }),
        ]);
        await b.ping();
        return b;
      } catch (error) {
        throw new Error(`cannot reach ${options.serverHint}: ${(error as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    }

    async function another(): Promise<Broker> {
      const b = await connect();
      extraBrokers.push(b);
      return b;
    }

    /** The worker runtime of core on this broker; stopped after the test like the consumers. */
    function runWorker(options: Omit<WorkerOptions, 'broker'>, on: Broker = broker): RunningConsumer {
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
      consumers.push(running);
      return running;
    }

    function consume(
      b: Broker,
      queue: string,
      handler: Parameters<typeof startConsumer>[2],
      concurrency = 4,
    ) {
      const c = startConsumer(b, queue, handler, concurrency);
      consumers.push(c);
      return c;
    }

    async function statsEventually(queue: string, expected: Partial<QueueStats>, what: string, b = broker) {
      const want = { ...expected };
      return eventually(
        () => b.stats(queue),
        (s) => Object.entries(want).every(([k, v]) => s[k as keyof QueueStats] === v),
        `${what}: stats ${JSON.stringify(want)}`,
        timeoutMs,
      );
    }

    beforeAll(async () => {
      broker = await connect();
    }, 30_000);

    afterEach(async () => {
      await Promise.all(consumers.splice(0).map((c) => c.stop().catch(() => {})));
    }, 60_000);

    afterAll(async () => {
      await Promise.all(extraBrokers.splice(0).map((b) => b.close().catch(() => {})));
      await broker?.close();
    }, 30_000);

    it('publishes, consumes and acks one job; stats follow each step', async () => {
      const queue = uniqueQueueName('basic');
      const envelope = job({ n: 1 });
      await broker.publish(queue, messages([envelope]));
      await statsEventually(queue, { ready: 1, inFlight: 0 }, 'after publish');

      const spy = new HandlerSpy(timeoutMs);
      const gate = deferred();
      const c = consume(
        broker,
        queue,
        spy.handler('c1', async (d) => {
          await gate.promise;
          await d.ack();
        }),
      );
      await c.ready;
      await spy.waitFor(() => spy.received.length === 1, 'the delivery');
      await statsEventually(queue, { ready: 0, inFlight: 1 }, 'while handling');
      gate.resolve();
      await statsEventually(queue, EMPTY, 'after ack');

      const [r] = spy.received;
      expect(r!.envelope).toEqual(envelope);
      expect(r!.delivery.attempt).toBe(1);
    });

    it('handles a batch of jobs each exactly once', async () => {
      const queue = uniqueQueueName('batch');
      const total = options.batchSize ?? 1_000;
      const envelopes = Array.from({ length: total }, (_, i) => job({ i }));
      for (let i = 0; i < total; i += 100) await broker.publish(queue, messages(envelopes.slice(i, i + 100)));
      const spy = new HandlerSpy(timeoutMs * 3);
      const c = consume(broker, queue, spy.handler(), 8);
      await c.ready;
      await spy.waitFor(() => spy.distinctIds().size === total, `${total} distinct jobs`);
      await statsEventually(queue, EMPTY, 'after the batch');
      await c.stop();
      expect(spy.received.length).toBe(total);
      expect([...spy.distinctIds()].sort()).toEqual(envelopes.map((e) => e.id).sort());
    }, 180_000);

    it('redelivers a retried job no earlier than its delay, with attempt + 1', async () => {
      const queue = uniqueQueueName('retry');
      const delayMs = 1_500;
      const envelope = job();
      let retriedAt = 0;
      const spy = new HandlerSpy(timeoutMs);
      const c = consume(
        broker,
        queue,
        spy.handler('c1', async (d) => {
          if (d.attempt === 1) {
            retriedAt = Date.now();
            await d.retry(delayMs);
          } else await d.ack();
        }),
      );
      await c.ready;
      await broker.publish(queue, messages([envelope]));
      await spy.waitFor(() => spy.received.length === 1, 'the first delivery');
      // A waiting retry is not ready. Brokers that delay by re-publishing count it as delayed;
      // brokers that keep the message invisible (SQS ChangeMessageVisibility) as in flight.
      await eventually(
        () => broker.stats(queue),
        (s) => s.ready === 0 && s.delayed + s.inFlight === 1,
        'while the retry waits: ready 0 and delayed + in flight 1',
        timeoutMs,
      );
      await spy.waitFor(() => spy.received.length === 2, 'the retry', timeoutMs + delayMs);
      const second = spy.received[1]!;
      expect(second.id).toBe(envelope.id);
      expect(second.delivery.attempt).toBe(2);
      if (broker.capabilities.delayedDelivery !== 'none') {
        // 20 ms allows for timer granularity only; early is a failure.
        expect(second.at - retriedAt).toBeGreaterThanOrEqual(delayMs - 20);
      }
      await statsEventually(queue, EMPTY, 'after the retry is acked');
    });

    it('dead-letters a job, then lists, redrives and purges dead letters', async () => {
      const queue = uniqueQueueName('dead');
      const a = job({ a: 1 });
      const b = job({ b: 1 });
      let redriven = false;
      const spy = new HandlerSpy(timeoutMs);
      const c = consume(
        broker,
        queue,
        spy.handler('c1', async (d, r) => {
          if (redriven && r.id === a.id) await d.ack();
          else await d.deadLetter(`bad job ${r.id}`);
        }),
      );
      await c.ready;
      await broker.publish(queue, messages([a, b]));
      await statsEventually(queue, { ready: 0, inFlight: 0, dead: 2 }, 'after dead-lettering two');

      const dead = broker.deadLetters(queue);
      const listed = await dead.list(10);
      expect(listed.map((d) => d.id).sort()).toEqual([a.id, b.id].sort());
      const deadA = listed.find((d) => d.id === a.id)!;
      expect(deadA.reason).toBe(`bad job ${a.id}`);
      expect(JSON.parse(deadA.body).id).toBe(a.id);
      expect(Number.isNaN(Date.parse(deadA.deadAt))).toBe(false);

      redriven = true;
      expect(await dead.redrive([a.id])).toBe(1);
      await spy.waitFor(() => spy.count(a.id) === 2, 'the redriven job');
      expect(spy.received.filter((r) => r.id === a.id)[1]!.delivery.attempt).toBe(1);
      await statsEventually(queue, { ready: 0, inFlight: 0, dead: 1 }, 'after the redrive');

      expect(await dead.purge()).toBe(1);
      await statsEventually(queue, EMPTY, 'after the purge');
      expect(await dead.list(10)).toEqual([]);
    });

    it('refuses a second outcome of a delivery with AlreadySettledError', async () => {
      const queue = uniqueQueueName('settle');
      // Each job's first outcome, then the second one that must be refused.
      const plans = [
        { first: 'ack', second: 'retry' },
        { first: 'ack', second: 'ack' },
        { first: 'deadLetter', second: 'ack' },
      ] as const;
      const envelopes = plans.map((plan) => job({ ...plan }));
      const refused = new Map<string, unknown>();
      const spy = new HandlerSpy(timeoutMs);
      const c = consume(
        broker,
        queue,
        spy.handler('c1', async (d, r) => {
          const plan = r.envelope!.payload as Partial<(typeof plans)[number]>;
          if (!plan.first) return d.ack(); // the marker
          if (plan.first === 'ack') await d.ack();
          else await d.deadLetter('the first outcome');
          // retry(0): a second outcome that slipped through would bring the job back at once.
          const second = plan.second === 'retry' ? d.retry(0) : d.ack();
          refused.set(
            r.id,
            await second.then(
              () => 'resolved',
              (error: unknown) => error,
            ),
          );
        }),
      );
      await c.ready;
      await broker.publish(queue, messages(envelopes));
      await spy.waitFor(() => refused.size === plans.length, 'three second outcomes');
      envelopes.forEach((envelope, i) => {
        const error = refused.get(envelope.id);
        expect(error, `${plans[i]!.first} then ${plans[i]!.second}`).toBeInstanceOf(AlreadySettledError);
        const settled = error as AlreadySettledError;
        expect(settled.name).toBe('AlreadySettledError');
        expect(settled.outcome).toBe(plans[i]!.second);
        expect(settled.messageId).toBe(spy.received.find((r) => r.id === envelope.id)!.delivery.messageId);
      });
      // The first outcomes stand: two acked, one dead letter, and no job comes back.
      await statsEventually(
        queue,
        { ready: 0, inFlight: 0, delayed: 0, dead: 1 },
        'after the first outcomes',
      );
      const marker = job({ marker: true });
      await broker.publish(queue, messages([marker]));
      await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
      for (const envelope of envelopes) expect(spy.count(envelope.id)).toBe(1);
      const dead = await broker.deadLetters(queue).list(10);
      expect(dead.map((d) => [d.id, d.reason])).toEqual([[envelopes[2]!.id, 'the first outcome']]);
    });

    it('dead-letters a job after max attempts through the worker runtime', async () => {
      const queue = uniqueQueueName('maxatt');
      let calls = 0;
      const worker = runWorker({
        queue,
        idempotency: new MemoryIdempotencyStore(),
        maxAttempts: 3,
        backoff: { baseMs: 20, maxMs: 100 },
        handlers: {
          test_job: {
            handle: async () => {
              calls += 1;
              throw new Error('always fails');
            },
          },
        },
      });
      await worker.ready;
      const envelope = job();
      await broker.publish(queue, messages([envelope]));
      await statsEventually(queue, { dead: 1, ready: 0, inFlight: 0, delayed: 0 }, 'the job in dead letters');
      expect(calls).toBe(3);
      const [dead] = await broker.deadLetters(queue).list(1);
      expect(dead!.id).toBe(envelope.id);
      expect(dead!.reason).toBe('failed after 3 attempts: always fails');
    });

    it('delays a published job until it is due', async (ctx) => {
      if (broker.capabilities.delayedDelivery === 'none') return ctx.skip();
      const queue = uniqueQueueName('delay');
      const delayMs = 1_500;
      const envelope = job();
      const publishedAt = Date.now();
      await broker.publish(queue, [{ envelope, delayMs }]);
      await statsEventually(queue, { ready: 0, delayed: 1 }, 'the delayed job');
      const spy = new HandlerSpy(timeoutMs + delayMs);
      const c = consume(broker, queue, spy.handler());
      await c.ready;
      await spy.waitFor(() => spy.received.length === 1, 'the delayed job');
      expect(spy.received[0]!.at - publishedAt).toBeGreaterThanOrEqual(delayMs - 20);
      await statsEventually(queue, EMPTY, 'after ack');
    });

    it('hands out ready jobs by priority (high, normal, low)', async (ctx) => {
      if (broker.capabilities.priority === 'none') return ctx.skip();
      const queue = uniqueQueueName('prio');
      const order: OutgoingMessage[] = [];
      for (let i = 0; i < 3; i++) {
        for (const priority of ['low', 'normal', 'high'] as const)
          order.push({ envelope: job({ priority, i }), priority });
      }
      await broker.publish(queue, order);
      await statsEventually(queue, { ready: 9 }, 'nine ready jobs');
      const spy = new HandlerSpy(timeoutMs);
      const c = consume(broker, queue, spy.handler(), 1);
      await c.ready;
      await spy.waitFor(() => spy.received.length === 9, 'nine jobs');
      const seen = spy.received.map((r) => (r.envelope!.payload as { priority: string }).priority);
      expect(seen).toEqual(['high', 'high', 'high', 'normal', 'normal', 'normal', 'low', 'low', 'low']);
    });

    it('keeps order per key', async (ctx) => {
      if (broker.capabilities.ordering === 'none') return ctx.skip();
      const queue = uniqueQueueName('order');
      const batch: OutgoingMessage[] = [];
      for (let i = 0; i < 30; i++)
        batch.push({ envelope: job({ key: i % 2 ? 'a' : 'b', i }), key: i % 2 ? 'a' : 'b' });
      await broker.publish(queue, batch);
      const spy = new HandlerSpy(timeoutMs);
      const c = consume(broker, queue, spy.handler(), 1);
      await c.ready;
      await spy.waitFor(() => spy.received.length === 30, 'thirty jobs');
      for (const key of ['a', 'b']) {
        const seq = spy.received
          .map((r) => r.envelope!.payload as { key: string; i: number })
          .filter((p) => p.key === key);
        expect(seq.map((p) => p.i)).toEqual([...seq.map((p) => p.i)].sort((x, y) => x - y));
      }
    });

    it('keeps order per key with concurrency 4 and keys interleaved', async (ctx) => {
      const { ordering } = broker.capabilities;
      if (ordering !== 'per-key' && ordering !== 'fifo') return ctx.skip();
      const queue = uniqueQueueName('keyorder');
      const keys = ['a', 'b', 'c', 'd', 'e'];
      const batch: OutgoingMessage[] = [];
      for (let i = 0; i < 60; i++) {
        // An irregular interleaving: runs of one key, then others, never a fixed rotation.
        const key = keys[(i + Math.floor(i / 3) + (i % 7 === 0 ? 2 : 0)) % keys.length]!;
        batch.push({ envelope: job({ key, i }), key });
      }
      await broker.publish(queue, batch);
      const started = new Map<string, number[]>(keys.map((k) => [k, []]));
      const running = new Set<string>();
      const overlaps: string[] = [];
      const spy = new HandlerSpy(timeoutMs * 2);
      const c = consume(
        broker,
        queue,
        spy.handler('c1', async (d, r) => {
          const { key, i } = r.envelope!.payload as { key: string; i: number };
          started.get(key)!.push(i);
          if (running.has(key)) overlaps.push(`${key}:${i}`);
          running.add(key);
          // Uneven work, so jobs that ran side by side would finish out of publish order.
          await new Promise((resolve) => setTimeout(resolve, ((i * 7) % 5) * 4));
          running.delete(key);
          await d.ack();
        }),
        4,
      );
      await c.ready;
      await spy.waitFor(() => spy.received.length === batch.length, `${batch.length} jobs`);
      for (const key of keys) {
        const published = batch
          .map((m) => m.envelope.payload as { key: string; i: number })
          .filter((p) => p.key === key)
          .map((p) => p.i);
        expect(started.get(key), `key ${key}`).toEqual(published);
      }
      // Handed out in order is what every ordered broker promises with concurrency > 1. Whether
      // a key's next job also waits for the one before it to finish is reported, not required.
      if (overlaps.length > 0)
        await ctx.annotate(
          `${overlaps.length} of ${batch.length} jobs started while the previous job of their key still ran`,
        );
      await statsEventually(queue, EMPTY, 'after every job is acked');
    }, 120_000);

    it('shares a queue between competing consumers, each job handled once', async () => {
      const queue = uniqueQueueName('compete');
      const second = await another();
      const spy = new HandlerSpy(timeoutMs * 2);
      const c1 = consume(broker, queue, spy.handler('c1'), 2);
      const c2 = consume(second, queue, spy.handler('c2'), 2);
      await Promise.all([c1.ready, c2.ready]);
      const envelopes = Array.from({ length: 200 }, (_, i) => job({ i }));
      await broker.publish(queue, messages(envelopes));
      await spy.waitFor(() => spy.distinctIds().size === 200, '200 jobs');
      await statsEventually(queue, EMPTY, 'after all acked');
      await Promise.all([c1.stop(), c2.stop()]);
      expect(spy.received.length).toBe(200);
    }, 120_000);

    it('fans an event out to every group, one member per group', async (ctx) => {
      if (broker.capabilities.pubsub === 'none') return ctx.skip();
      const topic = uniqueQueueName('topic');
      const second = await another();
      const spyA = new HandlerSpy(timeoutMs);
      const spyB = new HandlerSpy(timeoutMs);
      const subs = [
        startSubscriber(broker, topic, 'groupa', spyA.handler('a1')),
        startSubscriber(second, topic, 'groupa', spyA.handler('a2')),
        startSubscriber(broker, topic, 'groupb', spyB.handler('b1')),
      ];
      consumers.push(...subs);
      await Promise.all(subs.map((s) => s.ready));
      const events = Array.from({ length: 10 }, (_, i) => createEnvelope('job.succeeded', { i }));
      for (const e of events) await broker.publishEvent(topic, e);
      await spyA.waitFor(() => spyA.distinctIds().size === 10, 'group a to get all events');
      await spyB.waitFor(() => spyB.distinctIds().size === 10, 'group b to get all events');
      await Promise.all(subs.map((s) => s.stop()));
      expect(spyA.received.length).toBe(10);
      expect(spyB.received.length).toBe(10);
      expect(spyA.distinctIds()).toEqual(new Set(events.map((e) => e.id)));
    }, 120_000);

    it('brings back, once, a job whose consumer was SIGKILLed mid-job (or shows the loss when at-most-once)', async (ctx) => {
      if (!broker.capabilities.crossProcess) return ctx.skip();
      const queue = uniqueQueueName('crash');
      const child = forkCrashChild(env, queue);
      try {
        await child.ready;
        const envelope = job({ crash: true });
        await broker.publish(queue, messages([envelope]));
        expect(await child.got).toBe(envelope.id);
      } finally {
        await child.kill();
      }
      const crashedId = (await child.got) as string;
      const spy = new HandlerSpy(leaseMs + 60_000);
      const c = consume(broker, queue, spy.handler());
      await c.ready;
      const marker = job({ marker: true });
      if (broker.capabilities.redeliveryAfterCrash === 'none') {
        // At-most-once: the job left the broker with the dead consumer. The marker, published
        // after the crash, arrives; the crashed job never does.
        await broker.publish(queue, messages([marker]));
        await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
        expect(spy.count(crashedId)).toBe(0);
        await statsEventually(queue, EMPTY, 'nothing left: the job is lost');
        return;
      }
      await spy.waitFor(() => spy.count(crashedId) === 1, 'the crashed job to come back');
      await broker.publish(queue, messages([marker]));
      await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
      await statsEventually(queue, EMPTY, 'after the redelivered job is acked');
      expect(spy.count(crashedId)).toBe(1);
    }, 180_000);

    it('drains in-flight work on shutdown and takes no new jobs', async () => {
      const queue = uniqueQueueName('drain');
      const gate = deferred();
      const spy = new HandlerSpy(timeoutMs);
      // What finished, in order: each ack's promise, and stop().
      const finished: string[] = [];
      const c = consume(
        broker,
        queue,
        spy.handler('c1', async (d, r) => {
          await gate.promise;
          await d.ack();
          finished.push(`ack ${r.id}`);
        }),
        2,
      );
      await c.ready;
      const drainedJobs = [job({ n: 1 }), job({ n: 2 })];
      await broker.publish(queue, messages(drainedJobs));
      await spy.waitFor(() => spy.received.length === 2, 'two in-flight jobs');
      let drained = false;
      const stopping = c.stop().then(() => {
        drained = true;
        finished.push('stop');
      });
      const late = job({ late: true });
      await broker.publish(queue, messages([late]));
      await new Promise((r) => setImmediate(r));
      expect(drained).toBe(false);
      gate.resolve();
      await stopping;
      expect(
        finished.map((f) => (f === 'stop' ? f : 'ack')),
        'both acks resolved, then stop()',
      ).toEqual(['ack', 'ack', 'stop']);
      expect(new Set(finished)).toEqual(new Set([...drainedJobs.map((e) => `ack ${e.id}`), 'stop']));
      expect(spy.count(late.id)).toBe(0);
      await statsEventually(
        queue,
        { ready: 1, inFlight: 0 },
        'the late job still queued, the drained ones acked',
      );
    });

    it('dead-letters a malformed message with its reason and keeps consuming', async () => {
      const queue = uniqueQueueName('malformed');
      const handled: unknown[] = [];
      const goodJobDone = deferred();
      const worker = runWorker({
        queue,
        idempotency: new MemoryIdempotencyStore(),
        handlers: {
          test_job: {
            handle: async (p) => {
              handled.push(p);
              goodJobDone.resolve();
            },
          },
        },
      });
      await worker.ready;
      await options.publishRaw(queue, 'this is {not json');
      await options.publishRaw(queue, JSON.stringify({ id: 'x1', type: 'test_job' }));
      await options.publishRaw(queue, JSON.stringify({ type: 'nobody_handles_this', payload: {} }));
      await broker.publish(queue, messages([job({ good: true })]));
      await goodJobDone.promise;
      await statsEventually(queue, { dead: 3, ready: 0, inFlight: 0 }, 'three dead letters');
      expect(handled).toEqual([{ good: true }]);
      const reasons = (await broker.deadLetters(queue).list(10)).map((d) => d.reason).sort();
      expect(reasons[0]).toMatch(/^malformed envelope: .*createdAt/);
      expect(reasons[1]).toMatch(/^malformed message: body is not JSON/);
      expect(reasons[2]).toMatch(/^unknown job type "nobody_handles_this"/);
    });

    it('accepts a foreign {type, payload} message and stops retrying a non-retryable failure', async () => {
      const queue = uniqueQueueName('foreign');
      const seen: unknown[] = [];
      const foreignDone = deferred();
      const worker = runWorker({
        queue,
        idempotency: new MemoryIdempotencyStore(),
        handlers: {
          send_email: {
            handle: async (p) => {
              seen.push(p);
              foreignDone.resolve();
            },
          },
          test_job: {
            handle: async () => {
              throw new NonRetryableError('cannot ever work');
            },
          },
        },
      });
      await worker.ready;
      const payload = { to: 'a@example.com', subject: 'Hi', body: 'from PHP' };
      await options.publishRaw(queue, JSON.stringify({ type: 'send_email', payload }));
      await broker.publish(queue, messages([job()]));
      await foreignDone.promise;
      await statsEventually(
        queue,
        { dead: 1, ready: 0, inFlight: 0, delayed: 0 },
        'one dead letter, the rest done',
      );
      expect(seen).toEqual([payload]);
      const [dead] = await broker.deadLetters(queue).list(1);
      expect(dead!.reason).toBe('cannot ever work');
    });

    it('renews a lease with extend() so a long job is not handed to another consumer', async (ctx) => {
      if (!broker.capabilities.leaseExtension) return ctx.skip();
      const queue = uniqueQueueName('extend');
      const second = await another();
      const spy = new HandlerSpy(timeoutMs + leaseMs * 3);
      const release = deferred();
      const holder = consume(
        broker,
        queue,
        spy.handler('holder', async (d) => {
          const timer = setInterval(() => void d.extend(leaseMs), Math.max(100, leaseMs / 4));
          await release.promise;
          clearInterval(timer);
          await d.ack();
        }),
        1,
      );
      const other = consume(second, queue, spy.handler('other'), 1);
      await Promise.all([holder.ready, other.ready]);
      const envelope = job();
      await broker.publish(queue, messages([envelope]));
      await spy.waitFor(() => spy.received.length === 1, 'the first delivery');
      const marker = job({ marker: true });
      // Two full leases pass while the holder extends; then a marker proves the other consumer is live.
      await new Promise((r) => setTimeout(r, leaseMs * 2 + 500));
      await broker.publish(queue, messages([marker]));
      await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
      release.resolve();
      await statsEventually(queue, EMPTY, 'after the long job is acked');
      expect(spy.count(envelope.id)).toBe(1);
    }, 120_000);

    it('heartbeats a job that runs three leases through the runtime: handed out once, no copy left', async (ctx) => {
      if (!broker.capabilities.leaseExtension) return ctx.skip();
      const queue = uniqueQueueName('beat');
      const handedOut: string[] = [];
      let calls = 0;
      const finished = deferred();
      const worker = runWorker(
        {
          queue,
          idempotency: new MemoryIdempotencyStore(),
          // A free slot, so a copy handed out while the job runs would reach this worker too.
          concurrency: 2,
          // The lease the driver's env sets; the runtime renews the delivery every leaseMs / 3.
          leaseMs,
          handlers: {
            test_job: {
              handle: async () => {
                calls += 1;
                // The job's work: three full leases.
                await new Promise((resolve) => setTimeout(resolve, leaseMs * 3));
                finished.resolve();
              },
            },
          },
        },
        recordingDeliveries(broker, handedOut),
      );
      await worker.ready;
      const envelope = job({ long: true });
      await broker.publish(queue, messages([envelope]));
      await finished.promise;
      await statsEventually(queue, { ready: 0, inFlight: 0, delayed: 0 }, 'after the long job');
      expect(calls).toBe(1);
      expect(handedOut, 'deliveries of the long job').toHaveLength(1);
    }, 120_000);

    it('keeps jobs queued and in flight across a server restart and resumes by itself', async (ctx) => {
      if (!options.restartServer) return ctx.skip();
      const durable = options.durableAcrossRestart;
      if (durable === undefined)
        throw new Error('a driver that passes restartServer must declare durableAcrossRestart');
      const queue = uniqueQueueName('restart');
      const concurrency = 4;
      const before = Array.from({ length: 12 }, (_, i) => job({ before: i }));
      const restarted = deferred();
      /** Jobs handled to success: their ack resolved. */
      const succeeded = new Set<string>();
      const failedAcks: string[] = [];
      const spy = new HandlerSpy(timeoutMs * 3);
      const c = consume(
        broker,
        queue,
        spy.handler('c1', async (d, r) => {
          // The first `concurrency` jobs are held in their handlers across the restart.
          await restarted.promise;
          try {
            await d.ack();
            succeeded.add(r.id);
          } catch (error) {
            // Where the restart broke the delivery's channel or lease: the broker redelivers it.
            failedAcks.push(`${r.id}: ${(error as Error).message}`);
          }
        }),
        concurrency,
      );
      await c.ready;
      await broker.publish(queue, messages(before));
      await spy.waitFor(() => spy.received.length === concurrency, `${concurrency} jobs in flight`);
      const inFlight = new Set(spy.ids());
      await options.restartServer();
      restarted.resolve();
      const after = job({ after: true });
      await eventually(
        () => broker.publish(queue, messages([after])).then(() => true),
        (ok) => ok,
        'publishing after the restart',
        60_000,
        250,
      );
      await spy.waitFor(() => succeeded.has(after.id), 'a job published after the restart', 90_000);
      if (durable) {
        await spy.waitFor(
          () => before.every((e) => succeeded.has(e.id)),
          'every job published before the restart, in flight or queued, to be handled',
          120_000,
        );
      }
      await statsEventually(queue, { ready: 0, inFlight: 0 }, 'nothing left to hand out after the restart');
      const lost = before.filter((e) => !succeeded.has(e.id));
      if (durable) {
        expect(lost).toEqual([]);
        await ctx.annotate(
          `durable across a restart: ${before.length} of ${before.length} jobs handled ` +
            `(${inFlight.size} in flight at the restart); ${failedAcks.length} acks failed and were redelivered`,
        );
        return;
      }
      // Not durable as run here: the restart may take what the server held. Say what it took.
      const lostInFlight = lost.filter((e) => inFlight.has(e.id)).length;
      await ctx.annotate(
        `server not durable across a restart: ${lost.length} of ${before.length} jobs lost ` +
          `(${lostInFlight} of ${inFlight.size} in flight, ${lost.length - lostInFlight} of ` +
          `${before.length - inFlight.size} queued); ${failedAcks.length} acks failed`,
      );
    }, 300_000);
  });
}

export type { Delivery };
