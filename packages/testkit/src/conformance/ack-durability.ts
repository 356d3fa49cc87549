/**
 * What a resolved ack() promises (capabilities.ackDurable), checked with a consumer that is
 * SIGKILLed right after its ack resolved: no close(), so nothing gets flushed on the way out.
 */
import { expect } from 'vitest';
import { forkCrashChild } from '../consumers';
import { HandlerSpy } from '../spy';
import { EMPTY, job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const ackDurability: Scenario = {
  name: 'keeps a job acked when its consumer is SIGKILLed right after ack() resolved (ackDurable on-resolve; else at most one redelivery)',
  applies: (c) => c.crossProcess,
  timeoutMs: 180_000,
  async run(h, ctx) {
    const { broker, env, leaseMs } = h;
    const queue = uniqueQueueName('ackdur');
    const envelope = job({ ackDurability: true });
    const child = forkCrashChild(env, queue, { ackFirst: true });
    try {
      await child.ready;
      await broker.publish(queue, messages([envelope]));
      // The child reports the job only after its ack() resolved, then hangs until killed.
      expect(await child.got).toBe(envelope.id);
    } finally {
      await child.kill();
    }
    const onResolve = broker.capabilities.ackDurable === 'on-resolve';
    if (onResolve) {
      // No consumer is attached yet, so a lost ack would leave the job counted for good: still
      // leased or pending (in flight), or back in the queue (ready). Empty means recorded.
      await h.statsEventually(queue, EMPTY, 'after the SIGKILL, before anyone consumes: the ack is recorded');
    }
    // A live consumer on another connection: whatever the broker still holds comes to it, after
    // the dead consumer's lease, session or connection is gone.
    const spy = new HandlerSpy(leaseMs + 60_000);
    const c = h.consume(broker, queue, spy.handler());
    await c.ready;
    const marker = job({ marker: true });
    await broker.publish(queue, messages([marker]));
    await spy.waitFor(() => spy.count(marker.id) === 1, 'the marker');
    // Held copies are counted until handed out and acked, so empty means none is left to come.
    await h.statsEventually(queue, EMPTY, 'after the marker is acked', broker);
    if (onResolve) {
      expect(spy.count(envelope.id), 'an ack that resolved came back after the SIGKILL').toBe(0);
      return;
    }
    // 'eventually': the ack may not have landed before the kill; then the job comes back once,
    // like any job a crash interrupted (the runtime's idempotency key makes it a no-op).
    expect(spy.count(envelope.id)).toBeLessThanOrEqual(1);
    await ctx.annotate(
      spy.count(envelope.id) === 1
        ? 'ackDurable eventually: the acked job came back once after the SIGKILL'
        : 'ackDurable eventually: the ack had landed before the SIGKILL (not redelivered this run)',
    );
  },
};
