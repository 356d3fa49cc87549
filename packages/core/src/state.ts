import type { IdempotencyStore } from './idempotency';

export type JobStatus = 'queued' | 'processing' | 'succeeded' | 'failed' | 'dead';

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
  createdAt: string;
  updatedAt: string;
}

export type JobPatch = Partial<Pick<JobRecord, 'status' | 'attempts' | 'lastError' | 'result'>>;

export type CreateJobResult = { created: true } | { created: false; existing: JobRecord };

export interface JobStateStore {
  /**
   * Records a new job. Atomic on idempotencyKey: when a job with the same key exists, nothing
   * is written and that job is returned.
   */
  createJob(record: JobRecord): Promise<CreateJobResult>;
  getJob(id: string): Promise<JobRecord | undefined>;
  /** Updates a job's status fields and updatedAt; an unknown id is ignored (a job from another producer). */
  updateJob(id: string, patch: JobPatch): Promise<void>;
}

/** Job status and idempotency claims in one backend (STATE_URL: sqlite, redis or mysql). */
export interface StateStore extends JobStateStore, IdempotencyStore {
  ping(): Promise<void>;
  close(): Promise<void>;
}
