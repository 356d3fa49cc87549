import { describe, expect, it } from 'vitest';
import { attemptOf, createEnvelope, decodeEnvelope, encodeEnvelope, withAttempt } from '../src/envelope';

describe('envelope wire format', () => {
  it('round-trips an envelope', () => {
    const e = createEnvelope(
      'send_email',
      { to: 'a@example.com' },
      { idempotencyKey: 'k1', traceparent: '00-abc-def-01' },
    );
    expect(decodeEnvelope(encodeEnvelope(e), 'broker-id')).toEqual({ ok: true, envelope: e });
  });

  it('accepts the foreign {type, payload} shape, taking the broker id as the job id', () => {
    const r = decodeEnvelope('{"type":"send_email","payload":{"to":"a@example.com"}}', 'redis-1-0');
    expect(r.ok && r.envelope).toMatchObject({
      id: 'redis-1-0',
      type: 'send_email',
      payload: { to: 'a@example.com' },
      attempt: 1,
    });
  });

  it('reads a flat foreign {type, ...fields} body as {type, payload: fields}', () => {
    // The seed article's `RPUSH job_queue '{"type":"send_email","to":"user@example.com"}'`.
    const r = decodeEnvelope('{"type":"send_email","to":"user@example.com","subject":"Hi"}', 'm2');
    expect(r).toEqual({
      ok: true,
      envelope: {
        id: 'm2',
        type: 'send_email',
        payload: { to: 'user@example.com', subject: 'Hi' },
        attempt: 1,
        createdAt: expect.any(String),
      },
    });
    // A `payload` key wins: other keys beside it are dropped, as before.
    const both = decodeEnvelope('{"type":"t","payload":{"a":1},"b":2}', 'm3');
    expect(both.ok && both.envelope.payload).toEqual({ a: 1 });
    // Only `type`: an empty payload, for the job's schema to judge.
    const bare = decodeEnvelope('{"type":"t"}', 'm4');
    expect(bare.ok && bare.envelope.payload).toEqual({});
  });

  it('keeps the flat payload when a retry republishes a flat body', () => {
    const body = withAttempt('{"type":"send_email","to":"a@example.com"}', 2, 'm5');
    expect(JSON.parse(body)).toMatchObject({
      id: 'm5',
      type: 'send_email',
      payload: { to: 'a@example.com' },
      attempt: 2,
    });
  });

  it.each([
    ['not json', /^malformed message: body is not JSON/],
    ['[1,2]', /^malformed message: body is not a JSON object/],
    ['{"payload":{}}', /^malformed message: type: /],
    [
      '{"id":"x","type":"t","payload":1,"attempt":0,"createdAt":"2026-01-01T00:00:00.000Z"}',
      /^malformed envelope: attempt: /,
    ],
  ])('gives a reason for %s and never throws', (body, reason) => {
    const r = decodeEnvelope(body, 'm1');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(reason);
  });

  it('sets the attempt for a republished retry, upgrading a foreign body to an envelope', () => {
    const body = withAttempt('{"type":"t","payload":{"a":1}}', 3, 'm9');
    expect(JSON.parse(body)).toMatchObject({ id: 'm9', type: 't', payload: { a: 1 }, attempt: 3 });
    expect(attemptOf(body)).toBe(3);
    expect(attemptOf('garbage')).toBe(1);
    expect(withAttempt('garbage', 2, 'm')).toBe('garbage');
  });

  it('reads the attempt as decodeEnvelope does, so a driver and the runtime agree', () => {
    const bodies = [
      encodeEnvelope({ ...createEnvelope('t', {}), attempt: 4 }),
      '{"type":"t","payload":{},"attempt":4}', // foreign: a first attempt, whatever it says
      '{"id":"x","type":"t","payload":{},"createdAt":"2026-01-01T00:00:00.000Z"}',
    ];
    for (const body of bodies) {
      const decoded = decodeEnvelope(body, 'm1');
      expect(decoded.ok && decoded.envelope.attempt).toBe(attemptOf(body));
    }
    expect(bodies.map(attemptOf)).toEqual([4, 1, 1]);
  });
});

describe('envelope fast path', () => {
  it('accepts and strips exactly what the schema does', () => {
    const e = createEnvelope('t', { a: 1 });
    const withExtra = JSON.stringify({ ...e, extra: 'dropped' });
    expect(decodeEnvelope(withExtra, 'm')).toEqual({ ok: true, envelope: e });
    const noAttempt = JSON.stringify({
      id: 'i',
      type: 't',
      payload: null,
      createdAt: '2026-01-01T00:00:00.000Z',
    });
    expect(decodeEnvelope(noAttempt, 'm')).toEqual({
      ok: true,
      envelope: { id: 'i', type: 't', payload: null, attempt: 1, createdAt: '2026-01-01T00:00:00.000Z' },
    });
    for (const bad of [
      { createdAt: '2026-13-45T99:00:00Z' },
      { createdAt: '2026-02-30T00:00:00Z' }, // Date.parse accepts it; the schema does not
      { createdAt: '2026-01-01T24:00:00Z' },
      { createdAt: 'yesterday' },
      { attempt: 1.5 },
      { id: '' },
    ]) {
      expect(decodeEnvelope(JSON.stringify({ ...e, ...bad }), 'm').ok).toBe(false);
    }
  });
});
