/**
 * The Redis state store's index for searchJobs (GET /v1/jobs): sorted sets of job ids by
 * createdAt (milliseconds as the score; equal scores order by id, as the SQL stores do), kept in
 * the same script as the record writes (see state-store.ts), so a record and its index entries
 * change together.
 *
 *   polyqueue:jobs-by-time                 every indexed job
 *   polyqueue:jobs-by-time:status:<s>      by status (an update moves the id between two of these)
 *   polyqueue:jobs-by-time:type:<t>        by job type
 *   polyqueue:jobs-by-time:queue:<q>       by queue
 *   polyqueue:jobs-expiry                  "<queue>\n<type>\n<id>" by when its record expires
 *
 * On a Redis Cluster these names start with the records' hash tag `{polyqueue:jobs}` instead,
 * so they share the records' slot and one script can write both.
 *
 * Expiry follows the records' TTL: every write sets the member's score in jobs-expiry to the
 * record's new expiry, and every write then prunes up to PRUNE_BATCH members whose time has
 * passed: a member whose record still lives (TTL set by hand) is pushed back to its real expiry,
 * the others leave every set. Records written before this index existed are found by id only.
 *
 * A search reads the smallest set that the filter allows, newest first, a chunk at a time, reads
 * those records and keeps the ones matching the rest of the filter (the other fields and `q`).
 * It stops at `limit + 1` matches or after MAX_SCAN entries: then the page may hold fewer than
 * `limit` jobs and still carry a nextCursor, where the next call goes on.
 */
import {
  decodeJobCursor,
  encodeJobCursor,
  type JobRecord,
  type JobSearchFilter,
  type JobSearchPage,
  jobSearchPage,
} from '@polyqueue/core';
import type { RedisClient } from './connection';

/** Index entries one search may read before it answers with what it found so far. */
export const MAX_SCAN = 10_000;
const CHUNK = 200;

/** The names the scripts and the search use, from the records' prefix (`jobs` in state-store). */
export interface JobIndexNames {
  /** What every record's name starts with: `<jobs>:job:`. */
  recordPrefix: string;
  /** The set of every indexed job; the status, type and queue sets add `:status:<s>` and so on. */
  byTime: string;
  expiry: string;
}

export function jobIndexNames(jobs: string): JobIndexNames {
  return { recordPrefix: `${jobs}:job:`, byTime: `${jobs}:jobs-by-time`, expiry: `${jobs}:jobs-expiry` };
}

/** The jobs-expiry member of a record: its queue and type say which sets to leave. */
export function expiryMember(record: Pick<JobRecord, 'queue' | 'type' | 'id'>): string {
  return `${record.queue}\n${record.type}\n${record.id}`;
}

/** The score of a record in the sets by time. */
export function timeScore(createdAt: string): number {
  const at = Date.parse(createdAt);
  return Number.isNaN(at) ? 0 : at;
}

/** Expired members removed per write; a write adds at most one, so the set shrinks as it should. */
const PRUNE_BATCH = 20;

/**
 * Lua shared by the record scripts: `now_ms()` (the server's clock, as PEXPIRE uses), `STATUSES`
 * and `prune(expiry, recordPrefix, byTime, ttl)` as described in the header.
 */
export const INDEX_LUA = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local STATUSES = {'pending', 'queued', 'processing', 'retrying', 'succeeded', 'dead', 'cancelled'}
local function prune(expiry, recordPrefix, byTime, ttl)
  local now = now_ms()
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, ${PRUNE_BATCH})) do
    local q_end = string.find(member, '\\n', 1, true)
    local t_end = string.find(member, '\\n', q_end + 1, true)
    local id = string.sub(member, t_end + 1)
    local left = redis.call('PTTL', recordPrefix .. id)
    if left == -1 then left = tonumber(ttl) end
    if left > 0 then
      redis.call('ZADD', expiry, now + left, member)
    else
      redis.call('ZREM', expiry, member)
      redis.call('ZREM', byTime, id)
      for _, s in ipairs(STATUSES) do redis.call('ZREM', byTime .. ':status:' .. s, id) end
      redis.call('ZREM', byTime .. ':type:' .. string.sub(member, q_end + 1, t_end - 1), id)
      redis.call('ZREM', byTime .. ':queue:' .. string.sub(member, 1, q_end - 1), id)
    end
  end
end
`;

interface Position {
  score: number;
  id: string;
}

/**
 * searchJobs over the index; `read` turns a record's hash into the record. Only `fields` are
 * read from each hash (HMGET): the store names all but the payload, which a list leaves out.
 */
export async function searchJobIndex(
  redis: RedisClient,
  names: JobIndexNames,
  fields: readonly string[],
  read: (hash: Record<string, string>) => JobRecord,
  filter: JobSearchFilter,
  limit: number,
  cursor?: string,
): Promise<JobSearchPage> {
  const after = cursor === undefined ? undefined : decodeJobCursor(cursor);
  const set = await smallestSet(redis, names.byTime, filter);
  const found: JobRecord[] = [];
  let last: Position | undefined = after && { score: timeScore(after.createdAt), id: after.id };
  let examined = 0;
  while (found.length <= limit) {
    if (examined >= MAX_SCAN)
      // Out of reading budget before the page filled: go on from the last entry read.
      return {
        jobs: found,
        nextCursor: encodeJobCursor({ createdAt: new Date(last!.score).toISOString(), id: last!.id }),
      };
    const chunk = await entriesAfter(redis, set, last, Math.min(CHUNK, MAX_SCAN - examined));
    if (chunk.length === 0) break;
    const pipeline = redis.pipeline();
    for (const entry of chunk) pipeline.hmget(`${names.recordPrefix}${entry.id}`, ...fields);
    const replies = (await pipeline.exec()) ?? [];
    for (const [i, entry] of chunk.entries()) {
      examined += 1;
      last = entry;
      const [error, values] = replies[i] ?? [];
      if (error) throw error;
      const hash: Record<string, string> = {};
      for (const [j, value] of ((values ?? []) as (string | null)[]).entries())
        if (value !== null) hash[fields[j]!] = value;
      // No field at all: the record expired and the next write's prune takes its entries.
      if (Object.keys(hash).length === 0) continue;
      const record = read(hash);
      if (matches(record, filter)) found.push(record);
      if (found.length > limit) break;
    }
  }
  return jobSearchPage(found, limit);
}

function matches(job: JobRecord, filter: JobSearchFilter): boolean {
  return (
    (filter.status === undefined || job.status === filter.status) &&
    (filter.type === undefined || job.type === filter.type) &&
    (filter.queue === undefined || job.queue === filter.queue) &&
    (filter.q === undefined ||
      job.id === filter.q ||
      job.idempotencyKey === filter.q ||
      (job.lastError ?? '').includes(filter.q))
  );
}

/** The set with the fewest entries among those the filter names (every job without one). */
async function smallestSet(redis: RedisClient, byTime: string, filter: JobSearchFilter): Promise<string> {
  const sets: string[] = [];
  if (filter.status !== undefined) sets.push(`${byTime}:status:${filter.status}`);
  if (filter.type !== undefined) sets.push(`${byTime}:type:${filter.type}`);
  if (filter.queue !== undefined) sets.push(`${byTime}:queue:${filter.queue}`);
  if (sets.length === 0) return byTime;
  const sizes = await Promise.all(sets.map((s) => redis.zcard(s)));
  return sets[sizes.indexOf(Math.min(...sizes))]!;
}

/**
 * Up to `count` entries after `from` in newest-first order: those of the same score with a
 * smaller id (read whole: one millisecond holds few jobs), then those of lower scores.
 */
async function entriesAfter(
  redis: RedisClient,
  set: string,
  from: Position | undefined,
  count: number,
): Promise<Position[]> {
  const out: Position[] = [];
  if (from) {
    const ties = await redis.zrangebyscore(set, from.score, from.score);
    for (const id of ties.reverse())
      if (id < from.id && out.length < count) out.push({ score: from.score, id });
    if (out.length === count) return out;
  }
  const max = from ? `(${from.score}` : '+inf';
  const flat = await redis.zrevrangebyscore(set, max, '-inf', 'WITHSCORES', 'LIMIT', 0, count - out.length);
  for (let i = 0; i < flat.length; i += 2) out.push({ id: flat[i]!, score: Number(flat[i + 1]) });
  return out;
}
