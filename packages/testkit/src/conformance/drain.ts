/**
 * Shutdown drains: in-flight jobs finish and their acks resolve before stop() does; no new job
 * is taken.
 */
import { expect } from 'vitest';
import { deferred, HandlerSpy } from '../spy';
import { job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const drainOnStop: Scenario = {
  name: 'drains in-flight work on shutdown and takes no new jobs',
  async run(h) {
    const { broker, timeoutMs } = h;
    const queue = uniqueQueueName('drain');
    const gate = deferred();
    const spy = new HandlerSpy(timeoutMs);
    // What finished, in order: each ack's promise, and stop().
    const finished: string[] = [];
    const c = h.consume(
      broker,
      queue,
      spy.handler('c1', async (d, r) => {
        await gate.promise;
        await d.ack();
        finished.push(`ack ${r.id}`);
      }),
      2,
    );
    await c.ready;
    const drainedJobs = [job({ n: 1 }), job({ n: 2 })];
    await broker.publish(queue, messages(drainedJobs));
    await spy.waitFor(() => spy.received.length === 2, 'two in-flight jobs');
    let drained = false;
    const stopping = c.stop().then(() => {
      drained = true;
      finished.push('stop');
    });
    const late = job({ late: true });
    await broker.publish(queue, messages([late]));
    await new Promise((r) => setImmediate(r));
    expect(drained).toBe(false);
    gate.resolve();
    await stopping;
    expect(
      finished.map((f) => (f === 'stop' ? f : 'ack')),
      'both acks resolved, then stop()',
    ).toEqual(['ack', 'ack', 'stop']);
    expect(new Set(finished)).toEqual(new Set([...drainedJobs.map((e) => `ack ${e.id}`), 'stop']));
    expect(spy.count(late.id)).toBe(0);
    await h.statsEventually(
      queue,
      { ready: 1, inFlight: 0 },
      'the late job still queued, the drained ones acked',
    );
  },
};
