import { randomUUID } from 'node:crypto';
import type { QueueControls } from '@polyqueue/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The contract every QueueControls (sqlite, redis, mysql, memory) must keep. `create` is
 * called twice: the second instance stands for another process on the same store, which must
 * see the first one's pause at its next read.
 */
export function runQueueControlsSuite(name: string, create: () => Promise<QueueControls>): void {
  describe(`queue controls: ${name}`, () => {
    let controls: QueueControls;
    let elsewhere: QueueControls;
    beforeAll(async () => {
      controls = await create();
      elsewhere = await create();
    }, 30_000);
    afterAll(async () => {
      await controls?.close();
      await elsewhere?.close();
    });

    const queue = () => `q${randomUUID().slice(0, 8)}`;

    it('pauses and resumes a queue, saying whether the state changed', async () => {
      const q = queue();
      expect((await controls.paused()).has(q)).toBe(false);
      expect(await controls.pause(q)).toBe(true);
      expect((await controls.paused()).has(q)).toBe(true);
      expect(await controls.pause(q), 'pausing a paused queue changes nothing').toBe(false);
      expect(await controls.resume(q)).toBe(true);
      expect((await controls.paused()).has(q)).toBe(false);
      expect(await controls.resume(q), 'resuming a running queue changes nothing').toBe(false);
    });

    it("shows one client's pause to every other client, and leaves other queues running", async () => {
      const [a, b] = [queue(), queue()];
      await controls.pause(a);
      const seen = await elsewhere.paused();
      expect(seen.has(a)).toBe(true);
      expect(seen.has(b)).toBe(false);
      expect(await elsewhere.resume(a)).toBe(true);
      expect((await controls.paused()).has(a)).toBe(false);
    });

    it('keeps names with the characters queue names use', async () => {
      const q = `email.v2:eu-west_1-${randomUUID().slice(0, 4)}`;
      await controls.pause(q);
      expect((await elsewhere.paused()).has(q)).toBe(true);
      await controls.resume(q);
    });

    it('refuses a name no queue can have', async () => {
      await expect(controls.pause('')).rejects.toThrow(/queue name/);
      await expect(controls.pause('a b')).rejects.toThrow(/queue name/);
    });

    it('closes twice without an error', async () => {
      const extra = await create();
      await extra.close();
      await extra.close();
    });
  });
}
