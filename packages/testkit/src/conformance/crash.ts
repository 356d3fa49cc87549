/**
 * A consumer SIGKILLed mid-job: its job comes back once, or is shown lost where at-most-once.
 */
import { expect } from 'vitest';
import { forkCrashChild } from '../consumers';
import { HandlerSpy } from '../spy';
import { EMPTY, job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const crashRedelivery: Scenario = {
  name: 'brings back, once, a job whose consumer was SIGKILLed mid-job (or shows the loss when at-most-once)',
  applies: (c) => c.crossProcess,
  timeoutMs: 180_000,
  async run(h) {
    const { broker, leaseMs, env } = h;
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
    const c = h.consume(broker, queue, spy.handler());
    await c.ready;
    const marker = job({ marker: true });
    if (broker.capabilities.redeliveryAfterCrash === 'none') {
      // At-most-once: the job left the broker with the dead consumer. The marker, published
      // after the crash, arrives; the crashed job never does.
      await broker.publish(queue, messages([marker]));
      await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
      expect(spy.count(crashedId)).toBe(0);
      await h.statsEventually(queue, EMPTY, 'nothing left: the job is lost');
      return;
    }
    await spy.waitFor(() => spy.count(crashedId) === 1, 'the crashed job to come back');
    await broker.publish(queue, messages([marker]));
    await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
    await h.statsEventually(queue, EMPTY, 'after the redelivered job is acked');
    expect(spy.count(crashedId)).toBe(1);
  },
};
