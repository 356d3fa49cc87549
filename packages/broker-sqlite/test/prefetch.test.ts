import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEnvelope, type Delivery } from '@polyqueue/core';
import { afterAll, describe, expect, it } from 'vitest';
import { testBroker } from './test-broker';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sqlite-prefetch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite consumer prefetch', () => {
  it('leases fast jobs ahead and gives the unstarted ones back, attempt uncounted, when it stops', async () => {
    const broker = testBroker(join(dir, 'prefetch.db'), { claimBatch: 20 });
    try {
      const jobs = Array.from({ length: 40 }, (_, i) => ({ envelope: createEnvelope('test_job', { i }) }));
      await broker.publish('pre', jobs);

      const controller = new AbortController();
      let handled = 0;
      let inFlightAtStop = 0;
      await broker.consume(
        'pre',
        async (delivery: Delivery) => {
          handled += 1;
          if (handled === 11) {
            inFlightAtStop = (await broker.stats('pre')).inFlight;
            controller.abort();
          }
          await delivery.ack();
        },
        { concurrency: 1, signal: controller.signal },
      );
      // One handler slot, yet more rows leased: the prefetch measured fast jobs.
      expect(inFlightAtStop).toBeGreaterThan(1);
      expect(await broker.stats('pre')).toMatchObject({ ready: 40 - handled, inFlight: 0 });

      const attempts: number[] = [];
      const rest = new AbortController();
      await broker.consume(
        'pre',
        async (delivery) => {
          attempts.push(delivery.attempt);
          await delivery.ack();
          if (attempts.length === 40 - handled) rest.abort();
        },
        { concurrency: 4, signal: rest.signal },
      );
      expect(attempts).toEqual(Array.from({ length: 40 - handled }, () => 1));
      expect(await broker.stats('pre')).toMatchObject({ ready: 0, inFlight: 0 });
    } finally {
      await broker.close();
    }
  });
});
