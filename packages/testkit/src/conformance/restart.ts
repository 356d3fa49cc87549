/**
 * A server restart with jobs queued and in flight: each counted, none lost where the driver
 * declares the server durable (ConformanceOptions.durableAcrossRestart), and consuming resumes.
 */
import { expect } from 'vitest';
import { deferred, eventually, HandlerSpy } from '../spy';
import { job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const serverRestart: Scenario = {
  name: 'keeps jobs queued and in flight across a server restart and resumes by itself',
  applies: (_c, options) => options.restartServer !== undefined,
  timeoutMs: 300_000,
  async run(h, ctx) {
    const { broker, options, timeoutMs } = h;
    const restartServer = options.restartServer!;
    const durable = options.durableAcrossRestart;
    if (durable === undefined)
      throw new Error('a driver that passes restartServer must declare durableAcrossRestart');
    const queue = uniqueQueueName('restart');
    const concurrency = 4;
    const before = Array.from({ length: 12 }, (_, i) => job({ before: i }));
    const restarted = deferred();
    /** Jobs handled to success: their ack resolved. */
    const succeeded = new Set<string>();
    const failedAcks: string[] = [];
    const spy = new HandlerSpy(timeoutMs * 3);
    const c = h.consume(
      broker,
      queue,
      spy.handler('c1', async (d, r) => {
        // The first `concurrency` jobs are held in their handlers across the restart.
        await restarted.promise;
        try {
          await d.ack();
          succeeded.add(r.id);
        } catch (error) {
          // Where the restart broke the delivery's channel or lease: the broker redelivers it.
          failedAcks.push(`${r.id}: ${(error as Error).message}`);
        }
      }),
      concurrency,
    );
    await c.ready;
    await broker.publish(queue, messages(before));
    await spy.waitFor(() => spy.received.length === concurrency, `${concurrency} jobs in flight`);
    const inFlight = new Set(spy.ids());
    await restartServer();
    restarted.resolve();
    const after = job({ after: true });
    await eventually(
      () => broker.publish(queue, messages([after])).then(() => true),
      (ok) => ok,
      'publishing after the restart',
      60_000,
      250,
    );
    await spy.waitFor(() => succeeded.has(after.id), 'a job published after the restart', 90_000);
    if (durable) {
      await spy.waitFor(
        () => before.every((e) => succeeded.has(e.id)),
        'every job published before the restart, in flight or queued, to be handled',
        120_000,
      );
    }
    await h.statsEventually(queue, { ready: 0, inFlight: 0 }, 'nothing left to hand out after the restart');
    const lost = before.filter((e) => !succeeded.has(e.id));
    if (durable) {
      expect(lost).toEqual([]);
      await ctx.annotate(
        `durable across a restart: ${before.length} of ${before.length} jobs handled ` +
          `(${inFlight.size} in flight at the restart); ${failedAcks.length} acks failed and were redelivered`,
      );
      return;
    }
    // Not durable as run here: the restart may take what the server held. Say what it took.
    const lostInFlight = lost.filter((e) => inFlight.has(e.id)).length;
    await ctx.annotate(
      `server not durable across a restart: ${lost.length} of ${before.length} jobs lost ` +
        `(${lostInFlight} of ${inFlight.size} in flight, ${lost.length - lostInFlight} of ` +
        `${before.length - inFlight.size} queued); ${failedAcks.length} acks failed`,
    );
  },
};
