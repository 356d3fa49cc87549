/**
 * The image handler brings its payload schema (the catalogue's accepted process_image schema):
 * the worker runtime, which knows no job type, dead-letters a payload it refuses before the
 * handler touches the file system.
 */
import { createBrokerFromEnv } from '@polyqueue/brokers';
import { createEnvelope, createWorker, MemoryIdempotencyStore, type OutcomeEvent } from '@polyqueue/core';
import { acceptedJobSchemas } from '@polyqueue/jobs';
import { describe, expect, it } from 'vitest';
import { createImageHandler } from '../src/handler';

/** Publishes one process_image job on the memory broker and resolves with its final outcome. */
async function outcomeOf(payload: unknown): Promise<OutcomeEvent> {
  const broker = await createBrokerFromEnv({ BROKER: 'memory' });
  const handler = createImageHandler({
    storageRoot: '/nonexistent-storage-root',
    limitInputPixels: 1_000_000,
    maxInputBytes: 1024,
    timeoutMs: 1000,
  });
  let settle!: (event: OutcomeEvent) => void;
  const settled = new Promise<OutcomeEvent>((resolve) => {
    settle = resolve;
  });
  const controller = new AbortController();
  const worker = createWorker({
    broker,
    queue: 'image',
    handlers: { process_image: handler },
    idempotency: new MemoryIdempotencyStore(),
    onOutcome: (event) => {
      if (event.outcome !== 'processing') settle(event);
    },
  });
  const running = worker.run(controller.signal);
  try {
    await broker.publish('image', [{ envelope: createEnvelope('process_image', payload) }]);
    return await settled;
  } finally {
    controller.abort();
    await running;
    await broker.close();
  }
}

describe('process_image payloads through the worker runtime', () => {
  it('defines the handler with the catalogue schema its worker accepts', () => {
    expect(
      createImageHandler({ storageRoot: '.', limitInputPixels: 1, maxInputBytes: 1, timeoutMs: 1 }).schema,
    ).toBe(acceptedJobSchemas.process_image);
  });

  it.each([
    [{ path: '../../etc/passwd' }, /^invalid payload: path: must be a relative path/],
    [{ path: 'in/a.jpg', variants: [{ name: 'Big!', width: 10 }] }, /^invalid payload: variants\.0\.name: /],
    [{}, /^invalid payload: path: /],
  ])('dead-letters %j before the handler runs', async (payload, reason) => {
    const event = await outcomeOf(payload);
    expect(event.outcome).toBe('dead');
    expect(event.error).toMatch(reason);
  });
});
