import { randomFillSync } from 'node:crypto';

/** Random bytes drawn 4 KiB at a time: one getrandom call per 256 ids instead of one per id. */
const pool = Buffer.alloc(16 * 256);
let used = pool.length;

/**
 * A new job id: a UUID version 7 (RFC 9562), 48 bits of Unix milliseconds and then 74 random
 * bits, in the usual 8-4-4-4-12 hex form. Ids made later sort after ids made earlier (within a
 * millisecond, in any order), so every index keyed by job id (the SQL stores' primary keys, the
 * queue tables' job_id) takes each new id at its right-hand end: a commit of many new jobs
 * writes a few pages instead of one page per job, as random (version 4) ids did. On the API's
 * POST /v1/emails that was a third of the requests per second (docs/benchmarks.md). The 74
 * random bits keep ids unguessable enough and unique across processes, as v4's 122 did.
 */
export function newJobId(nowMs: number = Date.now()): string {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const bytes = pool.subarray(used, used + 16);
  used += 16;
  bytes.writeUIntBE(nowMs, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70; // version 7
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // variant 10
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
