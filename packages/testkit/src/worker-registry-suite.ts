import { randomUUID } from 'node:crypto';
import { WORKER_EXPIRY_MS, type WorkerHeartbeat, type WorkerRegistry } from '@polyqueue/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The contract every WorkerRegistry (sqlite, redis, mysql, memory) must keep. */
export function runWorkerRegistrySuite(name: string, create: () => Promise<WorkerRegistry>): void {
  describe(`worker registry: ${name}`, () => {
    let registry: WorkerRegistry;
    beforeAll(async () => {
      registry = await create();
    }, 30_000);
    afterAll(async () => {
      await registry?.close();
    });

    // Ids of this run only: a shared server may hold other runs' workers.
    const run = randomUUID();
    const mine = async (now?: number) => (await registry.live(now)).filter((w) => w.id.endsWith(run));
    const heartbeat = (id: string, queue: string, at: number): WorkerHeartbeat => ({
      id: `${id}-${run}`,
      queue,
      host: 'host-a',
      pid: 4242,
      concurrency: 8,
      inFlight: 3,
      version: '1.2.3',
      startedAt: new Date(at - 60_000).toISOString(),
      lastHeartbeat: new Date(at).toISOString(),
    });

    it('lists live workers by queue, refreshes a heartbeat, and forgets a removed one', async () => {
      const now = Date.now();
      const b = heartbeat('b', 'email', now);
      const a = heartbeat('a', 'images', now);
      await registry.beat(a);
      await registry.beat(b);
      expect(await mine()).toEqual([b, a]);
      const later = { ...b, inFlight: 0, lastHeartbeat: new Date(now + 1000).toISOString() };
      await registry.beat(later);
      expect(await mine()).toEqual([later, a]);
      await registry.remove(a.id);
      expect(await mine()).toEqual([later]);
      await registry.remove(later.id);
    });

    it('drops a worker three heartbeats after its last one', async () => {
      const now = Date.now();
      const gone = heartbeat('gone', 'email', now - WORKER_EXPIRY_MS - 1);
      const alive = heartbeat('alive', 'email', now);
      await registry.beat(gone);
      await registry.beat(alive);
      expect(await mine(now)).toEqual([alive]);
      expect(await mine(now + WORKER_EXPIRY_MS)).toEqual([]);
      await registry.remove(alive.id);
    });
  });
}
