import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../src/backoff';

describe('backoffDelay (full jitter, capped)', () => {
  const options = fc.record({
    baseMs: fc.integer({ min: 1, max: 60_000 }),
    maxMs: fc.integer({ min: 1, max: 86_400_000 }),
  });

  it('stays within [0, min(maxMs, baseMs * 2^(attempt-1))] for any attempt and random value', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        options,
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, o, r) => {
          const delay = backoffDelay(attempt, o, () => r);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.min(o.maxMs, o.baseMs * 2 ** (attempt - 1)));
        },
      ),
    );
  });

  it('never exceeds the cap, even where 2^attempt overflows', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), options, (attempt, o) => {
        expect(backoffDelay(attempt, o, () => 0.999999)).toBeLessThanOrEqual(o.maxMs);
      }),
    );
  });

  it('has a ceiling that doubles per attempt until the cap', () => {
    const top = (attempt: number) => backoffDelay(attempt, { baseMs: 100, maxMs: 1_000 }, () => 0.9999999);
    expect([1, 2, 3, 4, 5, 6].map(top)).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay(3, { baseMs: 100, maxMs: 1_000 }, () => 0)).toBe(0);
  });
});
