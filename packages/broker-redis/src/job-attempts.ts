/**
 * Job attempt histories (core's job-attempts.ts) in Redis: a list per job,
 *
 *   <jobs>:job-attempts:<id>    JSON entries, appended: an attempt's start, then its end
 *
 * (`<jobs>` is the state store's record prefix, `{polyqueue:jobs}` on a cluster, so a job's
 * history lives on the shard of its record). Each write is one script: RPUSH, LTRIM to the
 * newest 2 x ATTEMPTS_KEPT entries (a start and an end per attempt), and the record's TTL. A
 * read merges each attempt's entries, the end replacing the start (attemptHistory).
 */
import {
  ATTEMPTS_KEPT,
  attemptHistory,
  boundedAttempt,
  type JobAttempt,
  type JobAttemptLog,
} from '@polyqueue/core';
import type { RedisClient } from './connection';

// KEYS: the history. ARGV: the entry's JSON, entries kept, ttl ms.
const APPEND_ATTEMPT = `
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/** The state store's two attempt methods over `<jobs>:job-attempts:<id>`, kept ttlMs like records. */
export function redisJobAttempts(redis: RedisClient, jobs: string, ttlMs: number): JobAttemptLog {
  const key = (jobId: string) => `${jobs}:job-attempts:${jobId}`;
  return {
    async recordAttempt(jobId: string, attempt: JobAttempt): Promise<void> {
      const entry = JSON.stringify(boundedAttempt(attempt));
      await redis.eval(APPEND_ATTEMPT, 1, key(jobId), entry, 2 * ATTEMPTS_KEPT, ttlMs);
    },
    async listAttempts(jobId: string): Promise<JobAttempt[]> {
      const entries = await redis.lrange(key(jobId), 0, -1);
      return attemptHistory(entries.map((entry) => JSON.parse(entry) as JobAttempt));
    },
  };
}
