/**
 * Pause and resume (QueueControls + core's pausable consume): a pause stops every consumer of
 * the queue, whichever connection it uses, while the jobs they hold finish; other queues go on;
 * a resume brings all of them back. The flags live in a MemoryQueueControls shared by the
 * workers, as the state store shares them between processes (each store's flags have their own
 * contract suite); what this checks is that every driver's consume() stops and starts again.
 */
import { type Broker, MemoryIdempotencyStore, MemoryQueueControls, pausable } from '@polyqueue/core';
import { expect } from 'vitest';
import { eventually, gatedJobHandlers } from '../spy';
import { job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

const N = 20;

export const pauseStopsEveryConsumer: Scenario = {
  name: 'pause stops every consumer of a queue, lets in-flight jobs finish, and resume runs the rest',
  timeoutMs: 120_000,
  async run(h) {
    const { timeoutMs } = h;
    const queue = uniqueQueueName('paused');
    const other = uniqueQueueName('sentinel');
    const controls = new MemoryQueueControls();
    const notices: string[] = [];
    const gated = (b: Broker) =>
      pausable(b, {
        controls,
        pollMs: 100,
        onChange: (q, paused) => notices.push(`${q} ${paused ? 'paused' : 'resumed'}`),
      });
    const aborted: string[] = [];
    // A pause never aborts a running job: only the shutdown's drain timeout does.
    const { handlers, started, ran, release } = gatedJobHandlers((context) => {
      if (context.signal.aborted) aborted.push(context.envelope.id);
    });
    const idempotency = new MemoryIdempotencyStore();
    const second = await h.another();
    const workers = [
      h.runWorker({ queue, handlers, idempotency, concurrency: 2 }, gated(h.broker)),
      h.runWorker({ queue, handlers, idempotency, concurrency: 2 }, gated(second)),
      h.runWorker({ queue: other, handlers, idempotency }, gated(h.broker)),
    ];
    await Promise.all(workers.map((w) => w.ready));
    const wait = <T>(read: () => T, check: (v: T) => boolean, what: string) =>
      eventually(async () => read(), check, what, timeoutMs);

    // One job in flight when the pause comes.
    const slow = job({ slow: true });
    await h.broker.publish(queue, messages([slow]));
    await wait(() => started.includes(slow.id), Boolean, 'the slow job to start');
    await controls.pause(queue);
    const pausedNotices = () => notices.filter((n) => n === `${queue} paused`).length;
    // The idle consumer stops at once; the one running the slow job waits for it.
    await wait(pausedNotices, (n) => n >= 1, 'a consumer to stop');
    expect(ran).toEqual([]);
    release.resolve();
    await wait(pausedNotices, (n) => n === 2, 'both consumers to stop, the slow job done');
    expect(ran).toEqual([slow.id]);
    expect(aborted).toEqual([]);

    const held = Array.from({ length: N }, (_, i) => job({ i }));
    await h.broker.publish(queue, messages(held));
    const sentinel = job({ sentinel: true });
    await h.broker.publish(other, messages([sentinel]));
    await wait(() => ran.includes(sentinel.id), Boolean, 'the sentinel on another queue to run');
    expect(
      ran.filter((id) => held.some((e) => e.id === id)),
      'none of the paused queue',
    ).toEqual([]);

    await controls.resume(queue);
    await wait(
      () => held.filter((e) => ran.includes(e.id)).length,
      (n) => n === N,
      `all ${N} held jobs to run after the resume`,
    );
    // One worker may run all N before the other's next poll: wait for both to be back.
    await wait(
      () => notices.filter((n) => n === `${queue} resumed`).length,
      (n) => n === 2,
      'both consumers to start again',
    );
  },
};
