/**
 * How the redis-streams driver reads an entry's fields: the `envelope` field polyqueue writes,
 * the classic `type` + `payload` (JSON text), and the flat fields of the seed article's
 * `XADD job_stream * type send_email to user@example.com`, both when a consumer reads the entry
 * and when the reclaim script dead-letters it.
 */
import { entryBody, queueKeys } from '@polyqueue/broker-redis';
import { type CompleteBroker, decodeEnvelope } from '@polyqueue/core';
import { eventually, HandlerSpy, startConsumer, uniqueQueueName } from '@polyqueue/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeHandWrittenEntry, createTestBroker } from './redis-brokers';
import { rawClient } from './redis-server';

const PREFIX = 'pqfields';
const raw = rawClient();
let broker: CompleteBroker;

beforeAll(async () => {
  broker = await createTestBroker('redis-streams', {
    POLYQUEUE_PREFIX: PREFIX,
    REDIS_LEASE_MS: '1000',
    REDIS_BLOCK_MS: '300',
    REDIS_POLL_MS: '100',
    REDIS_MAX_DELIVERIES: '1',
  });
});

afterAll(async () => {
  await broker?.close();
  const keys = [...(await raw.keys(`${PREFIX}:*`)), ...(await raw.keys(`{${PREFIX}:*`))];
  if (keys.length > 0) await raw.del(...keys);
  raw.disconnect();
});

describe('entryBody', () => {
  it.each([
    [['envelope', '{"id":"x"}'], '{"id":"x"}'],
    [
      ['type', 'send_email', 'payload', '{"to":"a@example.com"}'],
      '{"type":"send_email","payload":{"to":"a@example.com"}}',
    ],
    [['type', 'send_email', 'to', 'a@example.com'], '{"type":"send_email","to":"a@example.com"}'],
    [['to', 'a@example.com'], '{"to":"a@example.com"}'],
  ])('reads %j as %s', (fields, body) => {
    expect(entryBody(fields)).toBe(body);
  });

  it('gives flat fields to decodeEnvelope as the payload', () => {
    const decoded = decodeEnvelope(entryBody(['type', 'send_email', 'to', 'a@example.com']), '1-0');
    expect(decoded.ok && decoded.envelope).toMatchObject({ id: '1-0', payload: { to: 'a@example.com' } });
  });
});

describe('flat stream fields on a real Redis', () => {
  it('delivers `XADD Q * type send_email to a@example.com` as {type, payload: {to}}', async () => {
    const queue = uniqueQueueName('flat');
    const { id, envelope } = await consumeHandWrittenEntry(broker, raw, PREFIX, queue, [
      'type',
      'send_email',
      'to',
      'a@example.com',
    ]);
    expect(envelope).toMatchObject({ id, type: 'send_email', payload: { to: 'a@example.com' } });
  });

  it('dead-letters a flat entry that keeps killing its worker with the same body a consumer reads', async () => {
    const queue = uniqueQueueName('flatpoison');
    const main = queueKeys(PREFIX, queue).main;
    // A consumer takes the entry and never settles it, like a worker killed by the job.
    const first = new HandlerSpy(10_000);
    const c1 = startConsumer(
      broker,
      queue,
      first.handler('c1', async () => {}),
      1,
    );
    await c1.ready;
    await raw.xadd(main, '*', 'type', 'send_email', 'to', 'a@example.com');
    await first.waitFor(() => first.received.length === 1, 'the first delivery');
    await c1.stop();
    // The next claim is over REDIS_MAX_DELIVERIES (1): reclaim-stream-2.lua dead-letters it.
    const second = new HandlerSpy();
    const c2 = startConsumer(broker, queue, second.handler(), 1);
    await c2.ready;
    await eventually(
      () => broker.stats(queue),
      (s) => s.dead === 1,
      'the flat entry in the dead letters',
      15_000,
    );
    await c2.stop();
    expect(second.received).toEqual([]);
    const [dead] = await broker.deadLetters(queue).list(1);
    expect(JSON.parse(dead!.body)).toEqual({ type: 'send_email', to: 'a@example.com' });
  });
});
