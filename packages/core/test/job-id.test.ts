import { describe, expect, it } from 'vitest';
import { createEnvelope } from '../src/envelope';
import { newJobId } from '../src/job-id';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newJobId (UUID version 7)', () => {
  it('is a version 7, variant 10 UUID whose first 48 bits are the milliseconds', () => {
    const at = Date.UTC(2026, 10, 30, 12, 0, 0, 123);
    const id = newJobId(at);
    expect(id).toMatch(UUID_V7);
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  });

  it('sorts ids made in a later millisecond after those made earlier (as text, as an index sees them)', () => {
    const start = Date.now();
    const ids = Array.from({ length: 600 }, (_, i) => newJobId(start + Math.floor(i / 3)));
    for (let i = 3; i < ids.length; i++) expect(ids[i]! > ids[i - 3]!).toBe(true);
  });

  it('never repeats, across the random pool refills', () => {
    const at = Date.now();
    const ids = new Set(Array.from({ length: 5000 }, () => newJobId(at)));
    expect(ids.size).toBe(5000);
    for (const id of ids) expect(id).toMatch(UUID_V7);
  });

  it('is the id of an envelope created without one', () => {
    const before = Date.now();
    const { id } = createEnvelope('send_email', {});
    expect(id).toMatch(UUID_V7);
    const ms = Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now());
  });
});
