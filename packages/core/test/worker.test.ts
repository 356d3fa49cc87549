import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Broker, ConsumeOptions, Delivery, DeliveryHandler } from '../src/broker';
import { createEnvelope, encodeEnvelope } from '../src/envelope';
import { NonRetryableError, RetryableError } from '../src/errors';
import { type IdempotencyStore, MemoryIdempotencyStore } from '../src/idempotency';
import { defineJob } from '../src/job-handler';
import { createRuntimeMetrics } from '../src/metrics';
import { createWorker, type OutcomeEvent, type WorkerOptions } from '../src/worker';

type Settled = { kind: 'ack' } | { kind: 'retry'; delayMs: number } | { kind: 'dead'; reason: string };

/** A delivery that records how the runtime settled it. */
function delivery(body: string, attempt = 1, messageId = 'm1'): Delivery & { settled: Promise<Settled> } {
  let resolve!: (s: Settled) => void;
  const settled = new Promise<Settled>((r) => {
    resolve = r;
  });
  return {
    messageId,
    body,
    attempt,
    settled,
    ack: async () => resolve({ kind: 'ack' }),
    retry: async (delayMs) => resolve({ kind: 'retry', delayMs }),
    deadLetter: async (reason) => resolve({ kind: 'dead', reason }),
    extend: async () => {},
  };
}

/** Feeds deliveries to the runtime's handler through the Broker.consume contract. */
function feeding(deliveries: Delivery[], extra: Partial<Broker> = {}): Broker {
  return {
    capabilities: { leaseExtension: false },
    ...extra,
    consume: async (
      _q: string,
      handler: DeliveryHandler,
      options: { signal: AbortSignal; onReady?: () => void },
    ) => {
      options.onReady?.();
      await Promise.all(deliveries.map((d) => handler(d)));
    },
  } as unknown as Broker;
}

async function runOne(
  d: Delivery & { settled: Promise<Settled> },
  options: Partial<WorkerOptions>,
): Promise<Settled> {
  const worker = createWorker({
    broker: feeding([d]),
    queue: 'notices',
    idempotency: new MemoryIdempotencyStore(),
    handlers: {},
    random: () => 0.5,
    ...options,
  });
  await worker.run(new AbortController().signal);
  return d.settled;
}

/** A job type of the test's own: core knows none. */
const noticeSchema = z.object({ to: z.email(), text: z.string().min(1) });
const notice = { to: 'a@example.com', text: 'Hello' };

describe('worker runtime', () => {
  it('validates, runs the handler and acks, recording the outcome', async () => {
    const events: OutcomeEvent[] = [];
    const registry = new Registry();
    const seen: unknown[] = [];
    const settled = await runOne(delivery(encodeEnvelope(createEnvelope('notify', notice))), {
      handlers: {
        notify: defineJob(noticeSchema, async (p) => {
          seen.push(p);
          return { messageId: 'x' };
        }),
      },
      onOutcome: (e) => void events.push(e),
      metrics: createRuntimeMetrics(registry),
    });
    expect(settled).toEqual({ kind: 'ack' });
    expect(seen).toEqual([notice]);
    expect(events.map((e) => e.outcome)).toEqual(['processing', 'succeeded']);
    expect(events[1]!.result).toEqual({ messageId: 'x' });
    expect(await registry.getSingleMetricAsString('polyqueue_jobs_processed_total')).toContain(
      'polyqueue_jobs_processed_total{queue="notices",type="notify",outcome="succeeded"} 1',
    );
  });

  it("dead-letters a payload its handler's schema refuses at once, naming the field, without running it", async () => {
    let runs = 0;
    const settled = await runOne(
      delivery(encodeEnvelope(createEnvelope('notify', { to: 'nope', text: 'y' }))),
      {
        handlers: { notify: defineJob(noticeSchema, async () => void runs++) },
      },
    );
    expect(settled).toEqual({ kind: 'dead', reason: expect.stringMatching(/^invalid payload: to: /) });
    expect(runs).toBe(0);
  });

  it("hands the handler its schema's output, transforms applied", async () => {
    const seen: unknown[] = [];
    const trimmed = z.object({ text: z.string().transform((t) => t.trim()) });
    const settled = await runOne(delivery(encodeEnvelope(createEnvelope('notify', { text: '  hi  ' }))), {
      handlers: { notify: defineJob(trimmed, async (p) => void seen.push(p)) },
    });
    expect(settled).toEqual({ kind: 'ack' });
    expect(seen).toEqual([{ text: 'hi' }]);
  });

  it('gives a handler without a schema the payload as the producer wrote it: no catalogue behind it', async () => {
    const seen: unknown[] = [];
    const settled = await runOne(delivery(encodeEnvelope(createEnvelope('send_email', { to: 'nope' }))), {
      handlers: { send_email: { handle: async (p) => void seen.push(p) } },
    });
    expect(settled).toEqual({ kind: 'ack' });
    expect(seen).toEqual([{ to: 'nope' }]);
  });

  it('dead-letters an unknown job type and a malformed body', async () => {
    const unknown = await runOne(delivery(encodeEnvelope(createEnvelope('resize_video', {}))), {
      handlers: {},
    });
    expect(unknown).toEqual({
      kind: 'dead',
      reason: expect.stringMatching(/^unknown job type "resize_video"/),
    });
    const malformed = await runOne(delivery('{oops'), { handlers: {} });
    expect(malformed).toEqual({ kind: 'dead', reason: expect.stringMatching(/^malformed message/) });
  });

  it('retries a failure with backoff, then dead-letters on the last attempt', async () => {
    const failing = { test_job: { handle: async () => Promise.reject(new Error('smtp down')) } };
    const body = encodeEnvelope(createEnvelope('test_job', {}));
    const first = await runOne(delivery(body, 1), {
      handlers: failing,
      backoff: { baseMs: 1_000, maxMs: 60_000 },
    });
    expect(first).toEqual({ kind: 'retry', delayMs: 500 }); // 0.5 * 1000 * 2^0
    const third = await runOne(delivery(body, 3), {
      handlers: failing,
      backoff: { baseMs: 1_000, maxMs: 60_000 },
    });
    expect(third).toEqual({ kind: 'retry', delayMs: 2_000 });
    const last = await runOne(delivery(body, 5), { handlers: failing, maxAttempts: 5 });
    expect(last).toEqual({ kind: 'dead', reason: 'failed after 5 attempts: smtp down' });
  });

  it('takes the attempt from the envelope where the driver keeps it there, not from the driver', async () => {
    const failing = { test_job: { handle: async () => Promise.reject(new Error('smtp down')) } };
    const body = encodeEnvelope({ ...createEnvelope('test_job', {}), attempt: 5 });
    const seen: number[] = [];
    const inBody = Object.defineProperties(delivery(body), {
      attemptInEnvelope: { value: true },
      attempt: {
        get() {
          throw new Error('the runtime read delivery.attempt despite attemptInEnvelope');
        },
      },
    });
    const settled = await runOne(inBody as Delivery & { settled: Promise<Settled> }, {
      handlers: failing,
      maxAttempts: 5,
      onOutcome: (event) => {
        seen.push(event.attempt);
      },
    });
    expect(settled).toEqual({ kind: 'dead', reason: 'failed after 5 attempts: smtp down' });
    expect(seen).toEqual([5, 5]); // processing, dead
  });

  it('honours NonRetryableError and a RetryableError retry-after', async () => {
    const body = encodeEnvelope(createEnvelope('test_job', {}));
    const dead = await runOne(delivery(body), {
      handlers: {
        test_job: { handle: async () => Promise.reject(new NonRetryableError('550 no such user')) },
      },
    });
    expect(dead).toEqual({ kind: 'dead', reason: '550 no such user' });
    const later = await runOne(delivery(body), {
      handlers: {
        test_job: { handle: async () => Promise.reject(new RetryableError('421 try later', 30_000)) },
      },
    });
    expect(later).toEqual({ kind: 'retry', delayMs: 30_000 });
  });

  it("tells the hook a job succeeded in the done mark's turn, and acks only once the mark is written", async () => {
    // A done mark that the test lets land: a store that commits a turn's writes together
    // (SQLite) writes the mark and the `succeeded` record in one commit only if the hook is told
    // before the mark is answered.
    const order: string[] = [];
    let landMark!: () => void;
    const memory = new MemoryIdempotencyStore();
    const store: IdempotencyStore = {
      claim: (key, owner, leaseMs) => memory.claim(key, owner, leaseMs),
      renew: (key, owner, leaseMs) => memory.renew(key, owner, leaseMs),
      release: (key, owner) => memory.release(key, owner),
      complete: (key, owner, result, ttlMs) => {
        order.push('done mark asked');
        return new Promise<boolean>((resolve) => {
          landMark = () => {
            order.push('done mark written');
            resolve(memory.complete(key, owner, result, ttlMs));
          };
        });
      },
    };
    const d = delivery(encodeEnvelope(createEnvelope('notify', notice)));
    const ack = d.ack;
    d.ack = async () => {
      order.push('ack');
      await ack();
    };
    const running = runOne(d, {
      idempotency: store,
      handlers: { notify: defineJob(noticeSchema, async () => 'sent') },
      onOutcome: (e) => {
        if (e.outcome === 'succeeded') {
          order.push('hook: succeeded');
          landMark();
        }
      },
    });
    expect(await running).toEqual({ kind: 'ack' });
    expect(order).toEqual(['done mark asked', 'hook: succeeded', 'done mark written', 'ack']);
  });

  it('acks a redelivered job whose side effect is already done, without running it', async () => {
    const idempotency = new MemoryIdempotencyStore();
    const envelope = createEnvelope('test_job', {});
    await idempotency.complete(envelope.id, 'an-earlier-run', 'sent');
    let runs = 0;
    const settled = await runOne(delivery(encodeEnvelope(envelope), 2), {
      idempotency,
      handlers: { test_job: { handle: async () => void runs++ } },
    });
    expect(settled).toEqual({ kind: 'ack' });
    expect(runs).toBe(0);
  });

  it('puts back a job another worker is running, for when its lease could end', async () => {
    const idempotency = new MemoryIdempotencyStore();
    const envelope = createEnvelope('test_job', {}, { idempotencyKey: 'order-7' });
    await idempotency.claim('order-7', 'another-worker', 10_000);
    const settled = await runOne(delivery(encodeEnvelope(envelope)), {
      idempotency,
      handlers: { test_job: { handle: async () => 1 } },
    });
    expect(settled.kind).toBe('retry');
    expect(settled.kind === 'retry' && settled.delayMs > 9_000 && settled.delayMs <= 10_000).toBe(true);
  });

  it('leases its claim as long as the broker leases the delivery, not minutes', async () => {
    const idempotency = new MemoryIdempotencyStore();
    const envelope = createEnvelope('test_job', {});
    let busyFor = 0;
    const d = delivery(encodeEnvelope(envelope));
    const worker = createWorker({
      broker: feeding([d], { leaseMs: 2_000 } as Partial<Broker>),
      queue: 'q',
      idempotency,
      handlers: {
        test_job: {
          handle: async () => {
            // What a redelivered copy meets if this worker died now: busy until the lease ends.
            const other = idempotency.claim(envelope.id, 'a-redelivery', 60_000);
            if (other.state === 'busy') busyFor = other.retryInMs;
          },
        },
      },
    });
    await worker.run(new AbortController().signal);
    expect(busyFor).toBeGreaterThan(1_000);
    expect(busyFor).toBeLessThanOrEqual(2_000);
  });

  it('renews the delivery and the claim while a handler outlives several leases', async () => {
    const idempotency = new MemoryIdempotencyStore();
    const envelope = createEnvelope('test_job', {});
    const extended: number[] = [];
    let wakeAfterExtends: (() => void) | undefined;
    const d = delivery(encodeEnvelope(envelope));
    d.extend = async (ms) => {
      extended.push(ms);
      if (extended.length >= 6) wakeAfterExtends?.();
    };
    let otherClaim = '';
    const worker = createWorker({
      broker: feeding([d], { capabilities: { leaseExtension: true } } as Partial<Broker>),
      queue: 'q',
      idempotency,
      leaseMs: 90,
      handlers: {
        test_job: {
          handle: async () => {
            // Six heartbeats of 30 ms: two leases of 90 ms have passed since the claim.
            await new Promise<void>((resolve) => {
              wakeAfterExtends = resolve;
            });
            otherClaim = (await idempotency.claim(envelope.id, 'a-redelivery', 90)).state;
          },
        },
      },
    });
    await worker.run(new AbortController().signal);
    expect(extended.every((ms) => ms === 90)).toBe(true);
    expect(otherClaim).toBe('busy');
    expect(await d.settled).toEqual({ kind: 'ack' });
  });

  it('tells the hook of a skipped duplicate with the earlier result, so its record can say succeeded', async () => {
    const idempotency = new MemoryIdempotencyStore();
    const envelope = createEnvelope('test_job', {});
    idempotency.complete(envelope.id, 'an-earlier-run', { sent: true });
    const events: OutcomeEvent[] = [];
    await runOne(delivery(encodeEnvelope(envelope), 2), {
      idempotency,
      handlers: { test_job: { handle: async () => 1 } },
      onOutcome: (e) => void events.push(e),
    });
    expect(events.map((e) => [e.outcome, e.result])).toEqual([['skipped_duplicate', { sent: true }]]);
  });

  it("passes the consumer's connection changes on, for /readyz", async () => {
    const changes: [boolean, string | undefined][] = [];
    const broker = {
      capabilities: { leaseExtension: false },
      consume: async (_q: string, _h: DeliveryHandler, options: ConsumeOptions) => {
        options.onConnectionChange?.(false, new Error('ECONNRESET'));
        options.onConnectionChange?.(true);
      },
    } as unknown as Broker;
    const worker = createWorker({
      broker,
      queue: 'q',
      idempotency: new MemoryIdempotencyStore(),
      handlers: {},
      onConnectionChange: (connected, error) => void changes.push([connected, error?.message]),
    });
    await worker.run(new AbortController().signal);
    expect(changes).toEqual([
      [false, 'ECONNRESET'],
      [true, undefined],
    ]);
  });

  it('aborts in-flight handlers once the drain timeout passes', async () => {
    const d = delivery(encodeEnvelope(createEnvelope('test_job', {})));
    const controller = new AbortController();
    let sawAbort = false;
    const worker = createWorker({
      broker: feeding([d]),
      queue: 'q',
      idempotency: new MemoryIdempotencyStore(),
      drainTimeoutMs: 10,
      handlers: {
        test_job: {
          handle: (_p, ctx) =>
            new Promise((_, reject) => {
              controller.abort();
              ctx.signal.addEventListener('abort', () => {
                sawAbort = true;
                reject(new Error('aborted by drain timeout'));
              });
            }),
        },
      },
    });
    await worker.run(controller.signal);
    expect(sawAbort).toBe(true);
    expect((await d.settled).kind).toBe('retry');
  });
});
