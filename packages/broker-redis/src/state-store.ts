import { createHash } from 'node:crypto';
import {
  CLAIMED,
  type ClaimEntry,
  type ClaimResult,
  type CompleteEntry,
  type CreateJobResult,
  DEFAULT_DONE_TTL_MS,
  type JobPatch,
  type JobRecord,
  type JobSearchFilter,
  type JobSearchPage,
  type JobStatus,
  payloadFromText,
  payloadText,
  type StateStore,
  silentLogger,
} from '@polyqueue/core';
import type { RedisClient } from './connection';
import { connect, connected, disconnect, ping } from './connection';
import { redisJobAttempts } from './job-attempts';
import { expiryMember, INDEX_LUA, jobIndexNames, searchJobIndex, timeScore } from './job-index';

/**
 * Job status and idempotency claims in Redis (STATE_URL=redis://...).
 *
 *   polyqueue:job:<id>          hash: the job record (result, progress, payload as JSON text); kept JOB_TTL_MS
 *   polyqueue:job-key:<key>     the job id that owns an API Idempotency-Key
 *   polyqueue:idem:<key>        a worker's claim: "claimed:<owner>" with the lease as TTL,
 *                               then "done:<result JSON>" kept for the done TTL
 *
 * searchJobs (GET /v1/jobs) reads sorted sets by time that the record scripts keep in step with
 * the records, expiry included: see job-index.ts for their names and how a search reads them.
 *
 * Every operation is one command or one script, so a crash never leaves half of one behind
 * (taking an Idempotency-Key and writing its record are one script). The claim scripts touch
 * one key; createJob with an Idempotency-Key touches two: the key's owner (found by the key)
 * and the record (found by the job id). No hash tag derived from either can put both in one
 * slot, so on a Redis Cluster (REDIS_CLUSTER_NODES) the records and the key owners share the
 * one hash tag `{polyqueue:jobs}`:
 *
 *   {polyqueue:jobs}:job:<id>        the job record
 *   {polyqueue:jobs}:job-key:<key>   the job id that owns an API Idempotency-Key
 *   polyqueue:idem:<key>             unchanged (one key per claim, spread over the cluster)
 *
 * so every record lives on one shard (its master and replicas) while the worker claims spread.
 * One server keeps the names above, so a store written before cluster support stays readable.
 *
 * Batches (claimMany, completeMany): on one server, one script over all the batch's keys, so
 * one round trip. A cluster refuses a script whose keys lie in different slots, and a batch's
 * claim keys almost never share one, so there each entry runs its own script, all sent at once
 * (one round trip per master, side by side).
 */
const JOB_TTL_MS = 30 * 24 * 3_600_000;

// KEYS: the claim. ARGV: lease ms, owner. The owner's own live claim is renewed.
const CLAIM = `
local mine = 'claimed:' .. ARGV[2]
if redis.call('SET', KEYS[1], mine, 'NX', 'PX', ARGV[1]) then return {'claimed'} end
local value = redis.call('GET', KEYS[1])
if value == mine then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return {'claimed'}
end
if value and string.sub(value, 1, 5) == 'done:' then return {'done', string.sub(value, 6)} end
return {'busy', redis.call('PTTL', KEYS[1])}
`;

// KEYS: the claims. ARGV: per claim, its lease ms and owner. Each claimed as CLAIM claims it,
// in order; the answers in a table, one per claim.
const CLAIM_MANY = `
local out = {}
for i = 1, #KEYS do
  local lease, mine = ARGV[2 * i - 1], 'claimed:' .. ARGV[2 * i]
  if redis.call('SET', KEYS[i], mine, 'NX', 'PX', lease) then
    out[i] = {'claimed'}
  else
    local value = redis.call('GET', KEYS[i])
    if value == mine then
      redis.call('PEXPIRE', KEYS[i], lease)
      out[i] = {'claimed'}
    elseif value and string.sub(value, 1, 5) == 'done:' then
      out[i] = {'done', string.sub(value, 6)}
    else
      out[i] = {'busy', redis.call('PTTL', KEYS[i])}
    end
  end
end
return out
`;

// KEYS: the claim. ARGV: lease ms, owner.
const RENEW = `
if redis.call('GET', KEYS[1]) == 'claimed:' .. ARGV[2] then return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0
`;

// KEYS: the claim. ARGV: done ttl ms, owner, result JSON. Another owner's claim is left alone.
const COMPLETE = `
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, 8) == 'claimed:' and value ~= 'claimed:' .. ARGV[2] then return 0 end
redis.call('SET', KEYS[1], 'done:' .. ARGV[3], 'PX', ARGV[1])
return 1
`;

// KEYS: the claims. ARGV: per claim, its done ttl ms, owner and result JSON. Each as COMPLETE,
// in order; 1 or 0 per claim.
const COMPLETE_MANY = `
local out = {}
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value and string.sub(value, 1, 8) == 'claimed:' and value ~= 'claimed:' .. ARGV[3 * i - 1] then
    out[i] = 0
  else
    redis.call('SET', KEYS[i], 'done:' .. ARGV[3 * i], 'PX', ARGV[3 * i - 2])
    out[i] = 1
  end
end
return out
`;

// KEYS: the claim. ARGV: owner.
const RELEASE = `
if redis.call('GET', KEYS[1]) == 'claimed:' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

// KEYS: the record, then the Idempotency-Key's owner when the job has one. ARGV: ttl ms, job
// id, its score by time, its jobs-expiry member, then the index names (INDEX_ARGS), then field
// name/value pairs. Returns {1} when created, {0, owner id} when the key is taken. The record
// enters the search index (job-index.ts) in the same script.
const CREATE_JOB = `${INDEX_LUA}
if #KEYS == 2 then
  local owner = redis.call('GET', KEYS[2])
  if owner then return {0, owner} end
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local id, score, record_prefix, by_time, expiry = ARGV[2], ARGV[3], ARGV[5], ARGV[6], ARGV[7]
local f = redis.call('HMGET', KEYS[1], 'status', 'type', 'queue')
redis.call('ZADD', by_time, score, id)
redis.call('ZADD', by_time .. ':status:' .. f[1], score, id)
redis.call('ZADD', by_time .. ':type:' .. f[2], score, id)
redis.call('ZADD', by_time .. ':queue:' .. f[3], score, id)
redis.call('ZADD', expiry, now_ms() + tonumber(ARGV[1]), ARGV[4])
prune(expiry, record_prefix, by_time, ARGV[1])
return {1}
`;

// KEYS: the record. ARGV: ttl ms, the status it must have ('' for any), the index names
// (INDEX_ARGS), then name/value pairs. Only an existing record is updated; an indexed one moves
// to its new status's set and its expiry follows the record's.
const UPDATE_JOB = `${INDEX_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local before = redis.call('HGET', KEYS[1], 'status')
if ARGV[2] ~= '' and before ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local record_prefix, by_time, expiry = ARGV[3], ARGV[4], ARGV[5]
local id = string.sub(KEYS[1], #record_prefix + 1)
local score = redis.call('ZSCORE', by_time, id)
if score then
  local f = redis.call('HMGET', KEYS[1], 'status', 'type', 'queue')
  if f[1] ~= before then
    redis.call('ZREM', by_time .. ':status:' .. before, id)
    redis.call('ZADD', by_time .. ':status:' .. f[1], score, id)
  end
  redis.call('ZADD', expiry, now_ms() + tonumber(ARGV[1]), f[3] .. '\\n' .. f[2] .. '\\n' .. id)
end
prune(expiry, record_prefix, by_time, ARGV[1])
return 1
`;

const digests = new Map<string, string>();

/**
 * EVALSHA by the script's digest, and EVAL only when the server lacks it (after a restart or
 * SCRIPT FLUSH; EVAL caches it again): the claim and done-mark scripts run twice per job, and
 * sent in full each time their text cost more than the keys they carry.
 */
function evalCached(redis: RedisClient, lua: string, numKeys: number, ...args: (string | number)[]) {
  let sha = digests.get(lua);
  if (sha === undefined) {
    sha = createHash('sha1').update(lua).digest('hex');
    digests.set(lua, sha);
  }
  return redis.evalsha(sha, numKeys, ...args).catch((error: unknown) => {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(lua, numKeys, ...args);
  });
}

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
  'progress',
  'createdAt',
  'updatedAt',
] as const;

export interface RedisStateStoreOptions {
  /** Key prefix (default polyqueue). */
  prefix?: string;
  /** REDIS_CLUSTER_NODES: use this Redis Cluster; the URL lends it user, password and TLS. */
  clusterNodes?: readonly string[];
}

export async function createRedisStateStore(
  url: string,
  options: RedisStateStoreOptions = {},
): Promise<StateStore> {
  const target = { url, ...(options.clusterNodes?.length ? { clusterNodes: options.clusterNodes } : {}) };
  const redis = connect(target, silentLogger(), 'state');
  await connected(redis, target);
  const prefix = options.prefix ?? 'polyqueue';
  // One server: the historic names. A cluster: records and key owners under one hash tag.
  const jobs = target.clusterNodes ? `{${prefix}:jobs}` : prefix;
  const store = new RedisStateStore(redis, prefix, jobs, Boolean(target.clusterNodes));
  // Attempt histories: a list per job beside its record (job-attempts.ts).
  return Object.assign(store, redisJobAttempts(redis, jobs, JOB_TTL_MS));
}

class RedisStateStore implements StateStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** What the record and Idempotency-Key owner names start with (see the header). */
    private readonly jobs: string,
    /** A Redis Cluster: batches run one script per entry (see the header). */
    private readonly cluster: boolean,
  ) {}

  #job(id: string) {
    return `${this.jobs}:job:${id}`;
  }

  /** INDEX_ARGS: the record prefix, jobs-by-time and jobs-expiry names the record scripts take. */
  #indexArgs(): [string, string, string] {
    const names = jobIndexNames(this.jobs);
    return [names.recordPrefix, names.byTime, names.expiry];
  }

  /** Newest first over the index (job-index.ts), filtered as it reads; MAX_SCAN bounds a page. */
  searchJobs(filter: JobSearchFilter, limit: number, cursor?: string): Promise<JobSearchPage> {
    return searchJobIndex(
      this.redis,
      jobIndexNames(this.jobs),
      RECORD_FIELDS,
      fromHash,
      filter,
      limit,
      cursor,
    );
  }

  async createJob(record: JobRecord): Promise<CreateJobResult> {
    const keys = [this.#job(record.id)];
    if (record.idempotencyKey !== undefined) keys.push(`${this.jobs}:job-key:${record.idempotencyKey}`);
    const fields = Object.entries(toHash(record)).flat();
    const [created, ownerId] = (await evalCached(
      this.redis,
      CREATE_JOB,
      keys.length,
      ...keys,
      JOB_TTL_MS,
      record.id,
      timeScore(record.createdAt),
      expiryMember(record),
      ...this.#indexArgs(),
      ...fields,
    )) as [number, string | undefined];
    if (created === 1) return { created: true };
    const existing = await this.getJob(String(ownerId));
    // The record and its key share a TTL and are written together, so this is a record deleted by hand.
    if (!existing)
      throw new Error(
        `idempotency key ${record.idempotencyKey} belongs to job ${ownerId}, whose record is gone (deleted by hand?)`,
      );
    return { created: false, existing };
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const hash = await this.redis.hgetall(this.#job(id));
    return Object.keys(hash).length === 0 ? undefined : fromHash(hash);
  }

  async updateJob(id: string, patch: JobPatch, onlyIfStatus?: JobStatus): Promise<boolean> {
    const fields = toHash({ ...patch, updatedAt: new Date().toISOString() });
    const updated = await evalCached(
      this.redis,
      UPDATE_JOB,
      1,
      this.#job(id),
      JOB_TTL_MS,
      onlyIfStatus ?? '',
      ...this.#indexArgs(),
      ...Object.entries(fields).flat(),
    );
    return updated === 1;
  }

  async claim(key: string, owner: string, leaseMs: number): Promise<ClaimResult> {
    const answer = await evalCached(this.redis, CLAIM, 1, this.#idem(key), ms(leaseMs), owner);
    return claimResult(answer as ClaimAnswer);
  }

  async claimMany(entries: readonly ClaimEntry[]): Promise<ClaimResult[]> {
    if (entries.length === 0) return [];
    if (this.cluster) return Promise.all(entries.map((e) => this.claim(e.key, e.owner, e.leaseMs)));
    const args: (string | number)[] = entries.map((e) => this.#idem(e.key));
    for (const e of entries) args.push(ms(e.leaseMs), e.owner);
    const answers = (await evalCached(this.redis, CLAIM_MANY, entries.length, ...args)) as ClaimAnswer[];
    return answers.map(claimResult);
  }

  async renew(key: string, owner: string, leaseMs: number): Promise<boolean> {
    return (await evalCached(this.redis, RENEW, 1, this.#idem(key), ms(leaseMs), owner)) === 1;
  }

  async complete(key: string, owner: string, result: unknown, ttlMs = DEFAULT_DONE_TTL_MS): Promise<boolean> {
    const json = JSON.stringify(result ?? null);
    return (await evalCached(this.redis, COMPLETE, 1, this.#idem(key), ms(ttlMs), owner, json)) === 1;
  }

  async completeMany(entries: readonly CompleteEntry[]): Promise<boolean[]> {
    if (entries.length === 0) return [];
    if (this.cluster)
      return Promise.all(entries.map((e) => this.complete(e.key, e.owner, e.result, e.ttlMs)));
    const args: (string | number)[] = entries.map((e) => this.#idem(e.key));
    for (const e of entries)
      args.push(ms(e.ttlMs ?? DEFAULT_DONE_TTL_MS), e.owner, JSON.stringify(e.result ?? null));
    const answers = (await evalCached(this.redis, COMPLETE_MANY, entries.length, ...args)) as number[];
    return answers.map((done) => done === 1);
  }

  async release(key: string, owner: string): Promise<void> {
    await evalCached(this.redis, RELEASE, 1, this.#idem(key), owner);
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

/** What CLAIM answers: the state, then the done result's JSON or the busy lease's PTTL. */
type ClaimAnswer = [string, string | number | undefined];

function claimResult([state, value]: ClaimAnswer): ClaimResult {
  if (state === 'claimed') return CLAIMED;
  if (state === 'done') return { state: 'done', result: JSON.parse(String(value)) };
  return { state: 'busy', retryInMs: Math.max(1, Number(value)) };
}

/** A whole, positive number of milliseconds, as PX and PEXPIRE want. */
function ms(value: number): number {
  return Math.max(1, Math.round(value));
}

/** Fields kept as JSON text: the handler's result and its last progress. */
const JSON_FIELDS: ReadonlySet<string> = new Set(['result', 'progress']);

function toHash(record: Partial<JobRecord>): Record<string, string> {
  const hash: Record<string, string> = {};
  for (const field of RECORD_FIELDS) {
    const value = record[field];
    if (value === undefined) continue;
    hash[field] = JSON_FIELDS.has(field) ? JSON.stringify(value) : String(value);
  }
  // The payload (written by createJob only): core's payloadText, '' for one too large to keep.
  const payload = payloadText(record);
  if (payload !== null) hash.payload = payload;
  return hash;
}

function fromHash(hash: Record<string, string>): JobRecord {
  const record: Record<string, unknown> = {};
  for (const field of RECORD_FIELDS) {
    const value = hash[field];
    if (value === undefined) continue;
    record[field] = field === 'attempts' ? Number(value) : JSON_FIELDS.has(field) ? JSON.parse(value) : value;
  }
  return Object.assign(record, payloadFromText(hash.payload)) as unknown as JobRecord;
}
