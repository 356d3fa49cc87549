import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Broker, type Capabilities, CapabilityError, type Logger, silentLogger } from '@polyqueue/core';
import { afterAll, describe, expect, it } from 'vitest';
import { workerEnvSchema } from '../src/config';
import { checkWorkerBroker, runWorkerProcess } from '../src/run-worker';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-worker-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CAPABILITIES: Capabilities = {
  delayedDelivery: 'native',
  priority: 'none',
  redeliveryAfterCrash: 'lease',
  ordering: 'none',
  pubsub: 'emulated',
  leaseExtension: true,
  delivery: 'at-least-once',
  ackDurable: 'on-resolve',
  crossProcess: true,
};

function brokerWith(capabilities: Partial<Capabilities>): Broker {
  return {
    name: 'fake',
    capabilities: { ...CAPABILITIES, ...capabilities },
    publish: async () => {},
    consume: async () => {},
    close: async () => {},
  };
}

/** A logger that keeps what start-up says (checkWorkerBroker writes through warn only). */
function recordingLogger(): { logger: Logger; lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const keep = (level: string) => (_fields: object, msg: string) => void lines.push({ level, msg });
  const logger = { warn: keep('warn'), info: keep('info'), error: keep('error') } as unknown as Logger;
  return { logger, lines };
}

describe('a worker process checks its broker at start-up', () => {
  it('fails before building its handlers when the queue needs what the broker cannot do, and says so in one line', async () => {
    const env = { BROKER: 'memory', STATE_URL: `sqlite:${join(dir, 'state.db')}` };
    let setups = 0;
    const started = runWorkerProcess({
      name: 'test-worker',
      queue: 'email',
      env,
      config: workerEnvSchema.parse(env),
      // The memory broker has no redelivery after a crash: nothing outlives its process.
      needs: { redeliveryAfterCrash: true },
      setup: async () => {
        setups += 1;
        return { handlers: {} };
      },
      signal: new AbortController().signal,
      logger: silentLogger(),
    });
    const error = await started.then(
      () => undefined,
      (e: unknown) => e,
    );
    // A ConfigError: runMain prints the message alone and exits 1.
    expect(error).toBeInstanceOf(CapabilityError);
    expect((error as Error).message).toBe(
      'queue "email" needs redelivery after a crash, which broker memory cannot do; choose another BROKER',
    );
    expect(setups).toBe(0);
  });

  it('requires pub/sub of every worker, for the job-events topic', () => {
    expect(() => checkWorkerBroker(brokerWith({ pubsub: 'none' }), 'image', silentLogger())).toThrow(
      'queue "image" needs pub/sub (job lifecycle events on the job-events topic), which broker fake cannot do; choose another BROKER',
    );
  });

  it('warns at start-up on an at-most-once broker, and says nothing of delivery on an at-least-once one', () => {
    const events = { publishEvent: async () => {}, subscribe: async () => {} };
    const atMostOnce = recordingLogger();
    checkWorkerBroker({ ...brokerWith({ delivery: 'at-most-once' }), ...events }, 'email', atMostOnce.logger);
    expect(atMostOnce.lines).toHaveLength(1);
    expect(atMostOnce.lines[0]!.level).toBe('warn');
    expect(atMostOnce.lines[0]!.msg).toMatch(
      /^broker fake is at-most-once: a job whose worker dies mid-job is lost/,
    );

    const atLeastOnce = recordingLogger();
    checkWorkerBroker({ ...brokerWith({}), ...events }, 'email', atLeastOnce.logger);
    expect(atLeastOnce.lines).toEqual([]);
  });
});
