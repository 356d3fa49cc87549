/**
 * Core's worker runtime on the broker: max attempts, malformed and foreign input,
 * non-retryable failures.
 */
import { MemoryIdempotencyStore, NonRetryableError } from '@polyqueue/core';
import { expect } from 'vitest';
import { deferred } from '../spy';
import { job, messages, type Scenario } from './harness';
import { uniqueQueueName } from './options';

export const maxAttemptsThroughRuntime: Scenario = {
  name: 'dead-letters a job after max attempts through the worker runtime',
  async run(h) {
    const { broker } = h;
    const queue = uniqueQueueName('maxatt');
    let calls = 0;
    const worker = h.runWorker({
      queue,
      idempotency: new MemoryIdempotencyStore(),
      maxAttempts: 3,
      backoff: { baseMs: 20, maxMs: 100 },
      handlers: {
        test_job: {
          handle: async () => {
            calls += 1;
            throw new Error('always fails');
          },
        },
      },
    });
    await worker.ready;
    const envelope = job();
    await broker.publish(queue, messages([envelope]));
    await h.statsEventually(queue, { dead: 1, ready: 0, inFlight: 0, delayed: 0 }, 'the job in dead letters');
    expect(calls).toBe(3);
    const [dead] = await broker.deadLetters(queue).list(1);
    expect(dead!.id).toBe(envelope.id);
    expect(dead!.reason).toBe('failed after 3 attempts: always fails');
  },
};

export const malformedInput: Scenario = {
  name: 'dead-letters a malformed message with its reason and keeps consuming',
  async run(h) {
    const { broker, options } = h;
    const queue = uniqueQueueName('malformed');
    const handled: unknown[] = [];
    const goodJobDone = deferred();
    const worker = h.runWorker({
      queue,
      idempotency: new MemoryIdempotencyStore(),
      handlers: {
        test_job: {
          handle: async (p) => {
            handled.push(p);
            goodJobDone.resolve();
          },
        },
      },
    });
    await worker.ready;
    await options.publishRaw(queue, 'this is {not json');
    await options.publishRaw(queue, JSON.stringify({ id: 'x1', type: 'test_job' }));
    await options.publishRaw(queue, JSON.stringify({ type: 'nobody_handles_this', payload: {} }));
    await broker.publish(queue, messages([job({ good: true })]));
    await goodJobDone.promise;
    await h.statsEventually(queue, { dead: 3, ready: 0, inFlight: 0 }, 'three dead letters');
    expect(handled).toEqual([{ good: true }]);
    const reasons = (await broker.deadLetters(queue).list(10)).map((d) => d.reason).sort();
    expect(reasons[0]).toMatch(/^malformed envelope: .*createdAt/);
    expect(reasons[1]).toMatch(/^malformed message: body is not JSON/);
    expect(reasons[2]).toMatch(/^unknown job type "nobody_handles_this"/);
  },
};

export const foreignShapeAndNonRetryable: Scenario = {
  name: 'accepts a foreign {type, payload} message and stops retrying a non-retryable failure',
  async run(h) {
    const { broker, options } = h;
    const queue = uniqueQueueName('foreign');
    const seen: unknown[] = [];
    const foreignDone = deferred();
    const worker = h.runWorker({
      queue,
      idempotency: new MemoryIdempotencyStore(),
      handlers: {
        send_email: {
          handle: async (p) => {
            seen.push(p);
            foreignDone.resolve();
          },
        },
        test_job: {
          handle: async () => {
            throw new NonRetryableError('cannot ever work');
          },
        },
      },
    });
    await worker.ready;
    const payload = { to: 'a@example.com', subject: 'Hi', body: 'from PHP' };
    await options.publishRaw(queue, JSON.stringify({ type: 'send_email', payload }));
    await broker.publish(queue, messages([job()]));
    await foreignDone.promise;
    await h.statsEventually(
      queue,
      { dead: 1, ready: 0, inFlight: 0, delayed: 0 },
      'one dead letter, the rest done',
    );
    expect(seen).toEqual([payload]);
    const [dead] = await broker.deadLetters(queue).list(1);
    expect(dead!.reason).toBe('cannot ever work');
  },
};
