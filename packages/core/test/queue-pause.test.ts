import { describe, expect, it } from 'vitest';
import type { Broker, ConsumeOptions, DeliveryHandler } from '../src/broker';
import { MemoryQueueControls } from '../src/queue-controls';
import { pausable } from '../src/queue-pause';

/** A broker whose consume() records each start and runs until its signal aborts. */
function countingBroker() {
  const rounds: AbortSignal[] = [];
  const broker: Broker = {
    name: 'counting',
    capabilities: {} as Broker['capabilities'],
    publish: async () => {},
    close: async () => {},
    consume: (_queue: string, _handler: DeliveryHandler, options: ConsumeOptions) => {
      rounds.push(options.signal);
      options.onReady?.();
      return new Promise<void>((resolve) => {
        if (options.signal.aborted) resolve();
        else options.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
  };
  return { broker, rounds };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('pausable consume', () => {
  it('is ready at once when the queue is paused at start, and consumes only after the resume', async () => {
    const controls = new MemoryQueueControls();
    await controls.pause('q');
    const { broker, rounds } = countingBroker();
    const stop = new AbortController();
    let ready = 0;
    const done = pausable(broker, { controls, pollMs: 5 }).consume('q', async () => {}, {
      concurrency: 1,
      signal: stop.signal,
      onReady: () => {
        ready += 1;
      },
    });
    await until(() => ready === 1, 'onReady');
    expect(rounds).toHaveLength(0);
    await controls.resume('q');
    await until(() => rounds.length === 1, 'a consumer');
    expect(ready, 'onReady is called once, not per consumer').toBe(1);
    stop.abort();
    await done;
    expect(rounds[0]!.aborted).toBe(true);
  });

  it('keeps the last state while the flags cannot be read: an outage neither pauses nor resumes', async () => {
    const controls = new MemoryQueueControls();
    // Failed reads, counted: the test waits for a few polls of the outage instead of sleeping.
    let failedReads = 0;
    const read = controls.paused.bind(controls);
    controls.paused = () =>
      read().catch((error: unknown) => {
        failedReads += 1;
        throw error;
      });
    const outage = async () => {
      const before = failedReads;
      controls.failWith = new Error('state store down');
      await until(() => failedReads >= before + 3, 'three polls during the outage');
      controls.failWith = undefined;
    };
    const { broker, rounds } = countingBroker();
    const stop = new AbortController();
    const changes: string[] = [];
    const done = pausable(broker, {
      controls,
      pollMs: 5,
      onChange: (q, paused) => changes.push(`${q} ${paused}`),
    }).consume('q', async () => {}, { concurrency: 1, signal: stop.signal });
    await until(() => rounds.length === 1, 'a consumer');

    await outage();
    expect(rounds[0]!.aborted, 'still consuming through the outage').toBe(false);

    await controls.pause('q');
    await until(() => rounds[0]!.aborted, 'the pause to stop the consumer');
    await outage();
    expect(rounds, 'still paused through the outage').toHaveLength(1);

    await controls.resume('q');
    await until(() => rounds.length === 2, 'a new consumer after the resume');
    expect(changes).toEqual(['q true', 'q false']);
    stop.abort();
    await done;
  });

  it('leaves other queues and everything but consume() alone', async () => {
    const controls = new MemoryQueueControls();
    await controls.pause('other');
    const { broker, rounds } = countingBroker();
    const gated = pausable(broker, { controls, pollMs: 5 });
    expect(gated.name).toBe('counting');
    const stop = new AbortController();
    const done = gated.consume('q', async () => {}, { concurrency: 1, signal: stop.signal });
    await until(() => rounds.length === 1, 'a consumer of the running queue');
    stop.abort();
    await done;
  });
});
