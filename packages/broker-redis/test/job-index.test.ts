import { randomUUID } from 'node:crypto';
import { createRedisStateStore } from '@polyqueue/broker-redis';
import type { StateStore } from '@polyqueue/core';
import { queuedJobRecord } from '@polyqueue/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, SERVER_HINT } from './redis-server';

// A prefix of its own: the assertions count every member of the index sets.
const PREFIX = `pqtest-index-${randomUUID().slice(0, 8)}`;

describe('redis state store: the search index follows the records', () => {
  let store: StateStore;
  let raw: Redis;
  beforeAll(async () => {
    try {
      store = await createRedisStateStore(REDIS_URL, { prefix: PREFIX });
    } catch (error) {
      throw new Error(`cannot reach ${SERVER_HINT}: ${(error as Error).message}`);
    }
    raw = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    const keys = await raw.keys(`${PREFIX}:*`);
    if (keys.length > 0) await raw.del(...keys);
    await raw.quit();
    await store.close();
  });

  it('moves a job between the status sets in the update that changes its status', async () => {
    const job = queuedJobRecord();
    await store.createJob(job);
    await store.updateJob(job.id, { status: 'dead', lastError: 'boom' });
    expect(await raw.zscore(`${PREFIX}:jobs-by-time:status:queued`, job.id)).toBeNull();
    expect(await raw.zscore(`${PREFIX}:jobs-by-time:status:dead`, job.id)).toBe(
      String(Date.parse(job.createdAt)),
    );
    expect((await store.searchJobs({ status: 'dead' }, 10)).jobs.map((j) => j.id)).toContain(job.id);
    expect((await store.searchJobs({ status: 'queued' }, 10)).jobs.map((j) => j.id)).not.toContain(job.id);
  });

  it('drops an expired record from every set on a later write, and keeps one whose record still lives', async () => {
    const gone = queuedJobRecord({ type: 'process_image', queue: 'image' });
    const kept = queuedJobRecord();
    await store.createJob(gone);
    await store.createJob(kept);
    // The record expires (as its TTL would make it); both expiry entries fall due now.
    await raw.del(`${PREFIX}:job:${gone.id}`);
    await raw.zadd(
      `${PREFIX}:jobs-expiry`,
      0,
      `image\nprocess_image\n${gone.id}`,
      0,
      `email\nsend_email\n${kept.id}`,
    );
    await store.createJob(queuedJobRecord()); // any write prunes
    for (const set of ['', ':status:queued', ':type:process_image', ':queue:image'])
      expect(await raw.zscore(`${PREFIX}:jobs-by-time${set}`, gone.id)).toBeNull();
    expect(await raw.zscore(`${PREFIX}:jobs-expiry`, `image\nprocess_image\n${gone.id}`)).toBeNull();
    // The live one is pushed back to its record's real expiry (30 days), still searchable.
    const expiresAt = Number(await raw.zscore(`${PREFIX}:jobs-expiry`, `email\nsend_email\n${kept.id}`));
    expect(expiresAt).toBeGreaterThan(Date.now() + 29 * 24 * 3_600_000);
    expect((await store.searchJobs({ q: kept.id }, 10)).jobs.map((j) => j.id)).toEqual([kept.id]);
  });

  it('finds only what still exists when the index names a record that expired before a prune', async () => {
    const job = queuedJobRecord({ type: `lonely-${randomUUID()}` });
    await store.createJob(job);
    await raw.del(`${PREFIX}:job:${job.id}`);
    expect(await store.searchJobs({ type: job.type }, 10)).toEqual({ jobs: [] });
  });
});
