import type { IdempotencyStore } from './idempotency';
import type { JobAttemptLog } from './job-attempts';

// The attempt history's types and helpers are part of the state stores' contract.
export * from './job-attempts';

/**
 * What a job record says, each word for one thing:
 * - `pending`: recorded by the API, its publication not yet confirmed (no 202 was sent for it);
 *   a retry of the request with the same Idempotency-Key publishes it.
 * - `queued`: the broker has the job durably.
 * - `processing`: a worker runs it now.
 * - `retrying`: an attempt failed; the next one is scheduled (lastError says why).
 * - `succeeded`: done, with its result.
 * - `dead`: failed for good (a non-retryable error or the last attempt); it is in the queue's
 *   dead letters, lastError holds the reason, and a redrive runs it again.
 * - `cancelled`: DELETE /v1/jobs/:id stopped it: a worker acks it without running it, or aborts
 *   its handler's signal if it was running; never retried.
 */
export type JobStatus = 'pending' | 'queued' | 'processing' | 'retrying' | 'succeeded' | 'dead' | 'cancelled';

/** What GET /v1/jobs/:id reports; written by the API on enqueue and by workers after. */
export interface JobRecord {
  id: string;
  type: string;
  queue: string;
  status: JobStatus;
  attempts: number;
  lastError?: string;
  result?: unknown;
  /** The API's Idempotency-Key header, unique across jobs. */
  idempotencyKey?: string;
  /** A hash of the request that created the job, so a reused key with another body is a conflict. */
  requestHash?: string;
  /** What the handler last told through context.progress; kept after the job ends. */
  progress?: JobProgress;
  /**
   * The payload the job was created with, when its JSON is at most PAYLOAD_KEPT_BYTES (the API
   * writes it on enqueue; keptPayload). A larger one is not kept: `payloadTruncated` is set instead.
   */
  payload?: unknown;
  payloadTruncated?: true;
  createdAt: string;
  updatedAt: string;
}

/** The largest payload (UTF-8 bytes of its JSON) a job record keeps. */
export const PAYLOAD_KEPT_BYTES = 16 * 1024;

/** The record's fields for a job's payload: the payload itself, or the mark that it was too large. */
export function keptPayload(payload: unknown): Pick<JobRecord, 'payload' | 'payloadTruncated'> {
  const json = JSON.stringify(payload);
  if (json === undefined) return {};
  return Buffer.byteLength(json) <= PAYLOAD_KEPT_BYTES ? { payload } : { payloadTruncated: true };
}

/**
 * The stores' one text for the payload fields: its JSON, '' for one too large to keep (not JSON,
 * so it cannot be mistaken for a payload), null for none.
 */
export function payloadText(record: Pick<JobRecord, 'payload' | 'payloadTruncated'>): string | null {
  if (record.payloadTruncated) return '';
  return record.payload === undefined ? null : JSON.stringify(record.payload);
}

/** The payload fields a store's payloadText stands for. */
export function payloadFromText(
  text: string | null | undefined,
): Pick<JobRecord, 'payload' | 'payloadTruncated'> {
  if (text == null) return {};
  return text === '' ? { payloadTruncated: true } : { payload: JSON.parse(text) };
}

/** A handler's report of how far its job is (context.progress), as its record keeps it. */
export interface JobProgress {
  /** 0 to 100. */
  percent: number;
  message?: string;
  /** When the handler reported it (ISO 8601), which may be before the write that stored it. */
  at: string;
}

/**
 * A job record as the SQL state stores keep it: one column per field, null for an absent one,
 * the result as JSON text. `Time` is what the driver hands back for a timestamp column
 * (better-sqlite3: the ISO text stored; mysql2: a Date).
 */
export interface JobColumns<Time = string> {
  id: string;
  type: string;
  queue: string;
  status: JobStatus;
  attempts: number;
  last_error: string | null;
  result: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  /** JSON of a JobProgress; optional as a store may select a row without it. */
  progress?: string | null;
  /** payloadText of the record; optional as a store may select a row without it. */
  payload?: string | null;
  created_at: Time;
  updated_at: Time;
}

/** The columns of a job row that searchJobs reads: all of them but the payload. */
export const LISTED_JOB_COLUMNS =
  'id, type, queue, status, attempts, last_error, result, idempotency_key, request_hash, progress, created_at, updated_at';

/** The record a SQL store's row holds (the inverse of what the stores write). */
export function jobFromColumns(row: JobColumns<string | Date>): JobRecord {
  const iso = (t: string | Date) => (typeof t === 'string' ? t : t.toISOString());
  const record: JobRecord = {
    id: row.id,
    type: row.type,
    queue: row.queue,
    status: row.status,
    attempts: Number(row.attempts),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
  if (row.last_error !== null) record.lastError = row.last_error;
  if (row.result !== null) record.result = JSON.parse(row.result);
  if (row.idempotency_key !== null) record.idempotencyKey = row.idempotency_key;
  if (row.request_hash !== null) record.requestHash = row.request_hash;
  if (row.progress != null) record.progress = JSON.parse(row.progress);
  Object.assign(record, payloadFromText(row.payload));
  return record;
}

export type JobPatch = Partial<Pick<JobRecord, 'status' | 'attempts' | 'lastError' | 'result' | 'progress'>>;

export type CreateJobResult = { created: true } | { created: false; existing: JobRecord };

export interface JobStateStore {
  /**
   * Records a new job. Atomic on idempotencyKey: when a job with the same key exists, nothing
   * is written and that job is returned.
   */
  createJob(record: JobRecord): Promise<CreateJobResult>;
  getJob(id: string): Promise<JobRecord | undefined>;
  /**
   * Updates a job's status fields and updatedAt; an unknown id is ignored (a job from another
   * producer). With `onlyIfStatus`, only a record in that status is changed (compare-and-set), so
   * a late write cannot move a job backwards (the API's `queued` after a fast worker's
   * `succeeded`). Resolves true when a record was changed.
   */
  updateJob(id: string, patch: JobPatch, onlyIfStatus?: JobStatus): Promise<boolean>;
  /**
   * Jobs matching every given field of the filter, newest first (createdAt, then id, both
   * descending), at most `limit`; `cursor` is a page's nextCursor. A store may answer fewer than
   * `limit` jobs with a nextCursor when it bounds the records one call reads (Redis). The records
   * come without their payload (`payload`, `payloadTruncated`): a list shows none, and a page of
   * 50 could otherwise read and parse 800 KiB of them; getJob has it.
   */
  searchJobs(filter: JobSearchFilter, limit: number, cursor?: string): Promise<JobSearchPage>;
  /** The job's attempt history (job-attempts.ts): every store of polyqueue keeps one. */
  recordAttempt?: JobAttemptLog['recordAttempt'];
  listAttempts?: JobAttemptLog['listAttempts'];
}

/** What GET /v1/jobs searches by; every given field must match. */
export interface JobSearchFilter {
  status?: JobStatus | undefined;
  type?: string | undefined;
  queue?: string | undefined;
  /** The job id or the idempotency key (exact), or a part of the last error (case-sensitive). */
  q?: string | undefined;
}

export interface JobSearchPage {
  jobs: JobRecord[];
  /** Where the next page starts; absent on the last page. */
  nextCursor?: string;
}

/** The last job of a page, where the next one starts (after it in newest-first order). */
export interface JobCursor {
  createdAt: string;
  id: string;
}

/** Opaque to clients: base64url of the last job's createdAt and id. */
export function encodeJobCursor(job: Pick<JobRecord, 'createdAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([job.createdAt, job.id])).toString('base64url');
}

/** The position a cursor names; throws a TypeError for one this function did not make. */
export function decodeJobCursor(cursor: string): JobCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== 'string' ||
    typeof parsed[1] !== 'string' ||
    Number.isNaN(Date.parse(parsed[0]))
  )
    throw new TypeError('not a cursor of GET /v1/jobs');
  return { createdAt: new Date(parsed[0]).toISOString(), id: parsed[1] };
}

/** A page of `limit` from rows read with `limit + 1`: the extra row only says that more follow. */
export function jobSearchPage(rows: JobRecord[], limit: number): JobSearchPage {
  if (rows.length <= limit) return { jobs: rows };
  const jobs = rows.slice(0, limit);
  return { jobs, nextCursor: encodeJobCursor(jobs[jobs.length - 1]!) };
}

/** Job status and idempotency claims in one backend (STATE_URL: sqlite, redis or mysql). */
export interface StateStore extends JobStateStore, IdempotencyStore {
  ping(): Promise<void>;
  close(): Promise<void>;
}
