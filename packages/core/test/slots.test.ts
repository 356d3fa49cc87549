import { describe, expect, it } from 'vitest';
import { Slots } from '../src/slots';

describe('Slots', () => {
  it('hands out at most size slots synchronously', () => {
    const slots = new Slots(2);
    expect(slots.tryAcquire()).toBe(true);
    expect(slots.tryAcquire()).toBe(true);
    expect(slots.tryAcquire()).toBe(false);
    expect(slots.used).toBe(2);
    expect(slots.free).toBe(0);
  });

  it('wakes one waiter per release, in order', async () => {
    const slots = new Slots(1);
    slots.tryAcquire();
    const order: string[] = [];
    const a = slots.acquire(() => false).then((ok) => order.push(`a:${ok}`));
    const b = slots.acquire(() => false).then((ok) => order.push(`b:${ok}`));
    slots.release();
    await a;
    expect(order).toEqual(['a:true']);
    slots.release();
    await b;
    expect(order).toEqual(['a:true', 'b:true']);
  });

  it('lets waiters give up when woken', async () => {
    const slots = new Slots(1);
    slots.tryAcquire();
    let stopping = false;
    const waiting = slots.acquire(() => stopping);
    stopping = true;
    slots.wakeAll();
    await expect(waiting).resolves.toBe(false);
    expect(slots.used).toBe(1);
  });
});
