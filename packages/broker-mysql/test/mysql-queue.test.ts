/** Behaviour specific to the mysql driver: SQL producers, the lease, table naming. */
import { createBrokerFromEnv } from '@polyqueue/brokers';
import {
  type CompleteBroker,
  createEnvelope,
  createWorker,
  type Delivery,
  decodeEnvelope,
  MemoryIdempotencyStore,
} from '@polyqueue/core';
import { eventually } from '@polyqueue/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableNames } from '../src/index';
import { connect, MYSQL_URL, SERVER_HINT } from './server';

const LEASE_MS = 800;
let broker: CompleteBroker;

function queueName(label: string): string {
  return `${label}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** The next delivery of a queue, taken by a consumer that stops right after (settling it is up to the test). */
async function take(b: CompleteBroker, queue: string): Promise<Delivery> {
  const controller = new AbortController();
  return new Promise<Delivery>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no delivery on ${queue} within 15 s`)), 15_000);
    b.consume(
      queue,
      async (delivery) => {
        clearTimeout(timer);
        controller.abort();
        resolve(delivery);
      },
      { concurrency: 1, signal: controller.signal },
    ).catch(reject);
  });
}

beforeAll(async () => {
  try {
    broker = await createBrokerFromEnv({
      BROKER: 'mysql',
      MYSQL_URL,
      MYSQL_LEASE_MS: String(LEASE_MS),
      MYSQL_POLL_MIN_MS: '10',
      MYSQL_POLL_MAX_MS: '100',
    });
  } catch (error) {
    throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
  }
});

afterAll(async () => {
  await broker?.close();
});

describe('mysql table queue', () => {
  it('enqueues a row written by plain SQL with only job_type and payload', async () => {
    const queue = queueName('sql');
    await broker.stats(queue); // creates the tables, as any first use does
    const db = await connect();
    try {
      const payload = { to: 'a@example.com', subject: 'Hi', body: 'from PHP' };
      const [result] = await db.query(
        `INSERT INTO \`polyqueue_${queue}\` (job_type, payload) VALUES ('send_email', ?)`,
        [JSON.stringify(payload)],
      );
      const rowId = String((result as { insertId: number }).insertId);
      const first = await take(broker, queue);
      expect(first.messageId).toBe(rowId);
      expect(first.attempt).toBe(1);
      const decoded = decodeEnvelope(first.body, first.messageId);
      expect(decoded.ok && decoded.envelope).toMatchObject({
        id: rowId,
        type: 'send_email',
        payload,
        attempt: 1,
      });

      // A retry stores the full envelope, keeping the id the row was given.
      await first.retry(0);
      const second = await take(broker, queue);
      expect(second.attempt).toBe(2);
      expect(JSON.parse(second.body)).toMatchObject({ id: rowId, type: 'send_email', payload, attempt: 2 });
      await second.ack();
      expect(await broker.stats(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
    } finally {
      await db.end();
    }
  });

  it('dead-letters a SQL row whose payload is not JSON, with the parser message, and keeps it', async () => {
    const queue = queueName('badsql');
    await broker.stats(queue);
    const db = await connect();
    try {
      await db.query(
        `INSERT INTO \`polyqueue_${queue}\` (job_type, payload) VALUES ('send_email', '{"to": oops}')`,
      );
    } finally {
      await db.end();
    }
    const controller = new AbortController();
    const worker = createWorker({ broker, queue, idempotency: new MemoryIdempotencyStore(), handlers: {} });
    const running = worker.run(controller.signal);
    try {
      await eventually(
        () => broker.stats(queue),
        (s) => s.dead === 1,
        'the dead letter',
        15_000,
      );
    } finally {
      controller.abort();
      await running;
    }
    const [dead] = await broker.deadLetters(queue).list(10);
    expect(dead!.reason).toMatch(/^malformed message: body is not JSON/);
    expect(dead!.body).toBe('{"to": oops}');
  });

  it('hands a job whose lease ran out to another consumer; the old holder can no longer settle it', async () => {
    const queue = queueName('lease');
    const envelope = createEnvelope('test_job', {});
    await broker.publish(queue, [{ envelope }]);
    const stale = await take(broker, queue);
    expect((await broker.stats(queue)).inFlight).toBe(1);
    // Not extended: after LEASE_MS the job is claimable again.
    const fresh = await take(broker, queue);
    expect(fresh.messageId).toBe(stale.messageId);
    await expect(stale.extend(1_000)).rejects.toThrow(/lease .* was lost/);
    await stale.ack(); // dropped: the row now belongs to `fresh`
    expect((await broker.stats(queue)).inFlight).toBe(1);
    await fresh.ack();
    expect(await broker.stats(queue)).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('deletes a row before ack() resolves, and returns prefetched jobs no handler started when it stops', async () => {
    const queue = queueName('prefetch');
    const total = 40;
    await broker.publish(
      queue,
      Array.from({ length: total }, (_, i) => ({ envelope: createEnvelope('test_job', { i }) })),
    );
    const controller = new AbortController();
    let started = 0;
    let running = 0;
    let mostRunning = 0;
    const remainingAfterAck: number[] = [];
    // Fast handlers make the consumer lease ahead of its single slot; stopping must hand those back.
    await broker.consume(
      queue,
      async (delivery) => {
        started += 1;
        running += 1;
        mostRunning = Math.max(mostRunning, running);
        if (started === 10) controller.abort();
        await new Promise((r) => setImmediate(r));
        running -= 1;
        await delivery.ack();
        const s = await broker.stats(queue);
        remainingAfterAck.push(s.ready + s.inFlight);
      },
      { concurrency: 1, signal: controller.signal },
    );
    expect(started).toBe(10);
    expect(mostRunning).toBe(1);
    // Each ack was committed when it resolved: after the k-th, at most total - k rows are left.
    const sorted = [...remainingAfterAck].sort((a, b) => b - a);
    for (const [k, remaining] of sorted.entries()) expect(remaining).toBeLessThanOrEqual(total - k - 1);
    expect(await broker.stats(queue)).toEqual({ ready: total - 10, inFlight: 0, delayed: 0, dead: 0 });
  });

  it('names tables polyqueue_Q and polyqueue_Q_dead, and keeps odd or long queue names apart', () => {
    expect(tableNames('polyqueue', 'email')).toEqual({
      queue: 'polyqueue_email',
      dead: 'polyqueue_email_dead',
    });
    const dotted = tableNames('polyqueue', 'a.b');
    const dashed = tableNames('polyqueue', 'a-b');
    expect(dotted.queue).not.toBe(dashed.queue);
    const long = tableNames('polyqueue', 'x'.repeat(80));
    expect(long.dead.length).toBeLessThanOrEqual(64);
    expect(long.queue).toMatch(/^[A-Za-z0-9_]+$/);
  });
});
