import { afterEach, describe, expect, it, vi } from 'vitest';
import { ACK_MAX_WAIT_MS, CarriedAcks } from '../src/carried-acks';

describe('CarriedAcks', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  // A timer counts whole milliseconds of the event loop's clock, so it can fire up to 1 ms
  // before ACK_MAX_WAIT_MS have passed by performance.now() (2-23 % of 20 ms timers in a probe
  // here). The claim loop then saw nothing overdue and slept until the next event. When every
  // slot of both workers held a job waiting for the concurrency slot that this unsent ack's job
  // held, none came: the mysql concurrency-limit conformance scenario stalled in CI. Only
  // setTimeout is faked here, so the timer fires while performance.now() has not moved: the
  // early wake-up, every time.
  it('finds its acks overdue at the wake-up ACK_MAX_WAIT_MS after the first, whatever the clock reads', () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    const seen: boolean[] = [];
    const acks: CarriedAcks = new CarriedAcks(() => seen.push(acks.overdue()));
    void acks.add('1', 'token');
    void acks.add('2', 'token');
    expect(seen, 'at each ack').toEqual([false, false]);
    vi.advanceTimersByTime(ACK_MAX_WAIT_MS - 1);
    expect(seen, 'before the wait is over').toEqual([false, false]);
    vi.advanceTimersByTime(1);
    expect(seen, 'at the wake-up').toEqual([false, false, true]);
    expect(acks.take()).toHaveLength(2);
    expect(acks.overdue(), 'with nothing left to send').toBe(false);
  });

  it('does not count a batch overdue by the wake-up of an earlier batch', () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    const acks = new CarriedAcks(() => {});
    void acks.add('1', 'token');
    expect(acks.take()).toHaveLength(1);
    vi.advanceTimersByTime(ACK_MAX_WAIT_MS / 2);
    void acks.add('2', 'token');
    // The first batch's timer fires now; the second batch has waited half its time.
    vi.advanceTimersByTime(ACK_MAX_WAIT_MS / 2);
    expect(acks.overdue()).toBe(false);
    vi.advanceTimersByTime(ACK_MAX_WAIT_MS / 2);
    expect(acks.overdue()).toBe(true);
  });
});
