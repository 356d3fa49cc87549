import {
  type ClaimResult,
  type CreateJobResult,
  DEFAULT_DONE_TTL_MS,
  type JobPatch,
  type JobRecord,
  type StateStore,
  silentLogger,
} from '@polyqueue/core';
import type { Redis } from 'ioredis';
import { connect, connected, disconnect, ping } from './connection';

/**
 * Job status and idempotency claims in Redis (STATE_URL=redis://...).
 *
 *   polyqueue:job:<id>          hash: the job record (result as JSON text); kept JOB_TTL_MS
 *   polyqueue:job-key:<key>     the job id that owns an API Idempotency-Key (SET NX)
 *   polyqueue:idem:<key>        a worker's claim: "claimed" with the lease as TTL (SET NX PX),
 *                               then "done:<result JSON>" kept for the done TTL
 *
 * Each operation touches one key or runs a one-key script, so it works on Redis Cluster.
 */
const JOB_TTL_MS = 30 * 24 * 3_600_000;

const CLAIM = `
if redis.call('SET', KEYS[1], 'claimed', 'NX', 'PX', ARGV[1]) then return {'claimed'} end
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, 5) == 'done:' then return {'done', string.sub(value, 6)} end
return {'busy', redis.call('PTTL', KEYS[1])}
`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == 'claimed' then return redis.call('DEL', KEYS[1]) end
return 0
`;

// Fields come as name/value pairs; only an existing record is updated.
const UPDATE_JOB = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

const RECORD_FIELDS = [
  'id',
  'type',
  'queue',
  'status',
  'attempts',
  'lastError',
  'result',
  'idempotencyKey',
  'requestHash',
  'createdAt',
  'updatedAt',
] as const;

export async function createRedisStateStore(url: string, prefix = 'polyqueue'): Promise<StateStore> {
  const redis = connect(url, silentLogger(), 'state');
  await connected(redis, url);
  return new RedisStateStore(redis, prefix);
}

class RedisStateStore implements StateStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  #job(id: string) {
    return `${this.prefix}:job:${id}`;
  }

  async createJob(record: JobRecord): Promise<CreateJobResult> {
    if (record.idempotencyKey !== undefined) {
      const keyOwner = `${this.prefix}:job-key:${record.idempotencyKey}`;
      const won = await this.redis.set(keyOwner, record.id, 'PX', JOB_TTL_MS, 'NX');
      if (won === null) {
        // The winner writes its record right after its SET NX; wait briefly for it.
        for (let tries = 0; tries < 50; tries++) {
          const ownerId = await this.redis.get(keyOwner);
          const existing = ownerId ? await this.getJob(ownerId) : undefined;
          if (existing) return { created: false, existing };
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        throw new Error(
          `job with idempotency key ${record.idempotencyKey} is being created but its record is missing`,
        );
      }
    }
    await this.redis
      .multi()
      .hset(this.#job(record.id), toHash(record))
      .pexpire(this.#job(record.id), JOB_TTL_MS)
      .exec();
    return { created: true };
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const hash = await this.redis.hgetall(this.#job(id));
    return Object.keys(hash).length === 0 ? undefined : fromHash(hash);
  }

  async updateJob(id: string, patch: JobPatch): Promise<void> {
    const fields = toHash({ ...patch, updatedAt: new Date().toISOString() });
    await this.redis.eval(UPDATE_JOB, 1, this.#job(id), JOB_TTL_MS, ...Object.entries(fields).flat());
  }

  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const [state, value] = (await this.redis.eval(
      CLAIM,
      1,
      this.#idem(key),
      Math.max(1, Math.round(leaseMs)),
    )) as [string, string | number | undefined];
    if (state === 'claimed') return { state: 'claimed' };
    if (state === 'done') return { state: 'done', result: JSON.parse(String(value)) };
    return { state: 'busy', retryInMs: Math.max(1, Number(value)) };
  }

  async complete(key: string, result: unknown, ttlMs = DEFAULT_DONE_TTL_MS): Promise<void> {
    await this.redis.set(
      this.#idem(key),
      `done:${JSON.stringify(result ?? null)}`,
      'PX',
      Math.max(1, Math.round(ttlMs)),
    );
  }

  async release(key: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.#idem(key));
  }

  #idem(key: string) {
    return `${this.prefix}:idem:${key}`;
  }

  ping(): Promise<void> {
    return ping(this.redis);
  }

  close(): Promise<void> {
    return disconnect(this.redis);
  }
}

function toHash(record: Partial<JobRecord>): Record<string, string> {
  const hash: Record<string, string> = {};
  for (const field of RECORD_FIELDS) {
    const value = record[field];
    if (value === undefined) continue;
    hash[field] = field === 'result' ? JSON.stringify(value) : String(value);
  }
  return hash;
}

function fromHash(hash: Record<string, string>): JobRecord {
  const record: Record<string, unknown> = {};
  for (const field of RECORD_FIELDS) {
    const value = hash[field];
    if (value === undefined) continue;
    record[field] = field === 'attempts' ? Number(value) : field === 'result' ? JSON.parse(value) : value;
  }
  return record as unknown as JobRecord;
}
