import { describe, expect, it } from 'vitest';
import { DELAY_TIERS_MS, queueNames, tierLabel } from '../src/config';
import { DELIVER_AT_HEADER, deliverAtOf, hopsFor, republishHeaders, tierIndexFor } from '../src/delay';
import { routeFor } from '../src/publisher';

describe('delay tiers', () => {
  it('picks the longest tier that does not pass the due time, or the shortest', () => {
    expect(tierIndexFor(0)).toBe(0);
    expect(tierIndexFor(100)).toBe(0);
    expect(DELAY_TIERS_MS[tierIndexFor(1_000)]).toBe(1_000);
    expect(DELAY_TIERS_MS[tierIndexFor(4_999)]).toBe(1_000);
    expect(DELAY_TIERS_MS[tierIndexFor(90_000)]).toBe(30_000);
    expect(DELAY_TIERS_MS[tierIndexFor(24 * 3_600_000)]).toBe(3_600_000);
  });

  it('never arrives early and overshoots by less than the shortest tier', () => {
    for (const delay of [1, 249, 250, 251, 1_500, 7_777, 61_000, 3_599_999, 5 * 3_600_000 + 1]) {
      const total = hopsFor(delay).reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThanOrEqual(delay);
      expect(total - delay).toBeLessThan(DELAY_TIERS_MS[0]!);
    }
  });

  it('keeps the hop count small for delays under an hour', () => {
    expect(hopsFor(3_599_999).length).toBeLessThanOrEqual(25);
  });

  it('names tier queues after their length', () => {
    expect(DELAY_TIERS_MS.map(tierLabel)).toEqual(['250ms', '1s', '5s', '30s', '2m', '10m', '1h']);
    expect(queueNames('polyqueue', 'email').tiers[1]).toBe('polyqueue.email.delay.1s');
  });

  it('routes a delayed message to its first tier with its due time', () => {
    const names = queueNames('polyqueue', 'email');
    expect(routeFor(names, undefined, 1_000)).toEqual({ routingKey: 'polyqueue.email', headers: {} });
    expect(routeFor(names, 0, 1_000)).toEqual({ routingKey: 'polyqueue.email', headers: {} });
    const delayed = routeFor(names, 45_000, 1_000);
    expect(delayed.routingKey).toBe('polyqueue.email.delay.30s');
    expect(deliverAtOf(delayed.headers)).toBe(46_000);
  });

  it('drops the broker dead-letter history when a message hops again', () => {
    const headers = republishHeaders({
      'x-death': [{ count: 3 }],
      'x-first-death-queue': 'q',
      'x-last-death-reason': 'expired',
      [DELIVER_AT_HEADER]: 5,
      custom: 'kept',
    });
    expect(headers).toEqual({ [DELIVER_AT_HEADER]: 5, custom: 'kept' });
  });
});
