import {
  ATTEMPTS_KEPT,
  attemptHistory,
  boundedAttempt,
  type CreateJobResult,
  decodeJobCursor,
  type JobAttempt,
  type JobPatch,
  type JobRecord,
  type JobSearchFilter,
  type JobSearchPage,
  type JobStatus,
  jobSearchPage,
  MemoryIdempotencyStore,
  type StateStore,
} from '@polyqueue/core';

/**
 * A StateStore in one process's memory, for unit tests and in-process benchmarks (with
 * BROKER=memory). Nothing survives the process, and no other process sees it.
 */
export class MemoryStateStore extends MemoryIdempotencyStore implements StateStore {
  readonly #jobs = new Map<string, JobRecord>();
  readonly #byKey = new Map<string, string>();
  readonly #attempts = new Map<string, JobAttempt[]>();
  readonly #clock: () => number;
  /** Set to an error to make ping() and every job call fail (tests of /readyz and outages). */
  failWith: Error | undefined;

  constructor(now: () => number = Date.now) {
    super(now);
    this.#clock = now;
  }

  async createJob(record: JobRecord): Promise<CreateJobResult> {
    this.#check();
    if (record.idempotencyKey !== undefined) {
      const existingId = this.#byKey.get(record.idempotencyKey);
      if (existingId !== undefined)
        return { created: false, existing: structuredClone(this.#jobs.get(existingId)!) };
      this.#byKey.set(record.idempotencyKey, record.id);
    }
    this.#jobs.set(record.id, structuredClone(record));
    return { created: true };
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    this.#check();
    const job = this.#jobs.get(id);
    return job ? structuredClone(job) : undefined;
  }

  async updateJob(id: string, patch: JobPatch, onlyIfStatus?: JobStatus): Promise<boolean> {
    this.#check();
    const job = this.#jobs.get(id);
    if (!job || (onlyIfStatus !== undefined && job.status !== onlyIfStatus)) return false;
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    Object.assign(job, structuredClone(defined), { updatedAt: new Date(this.#clock()).toISOString() });
    return true;
  }

  async recordAttempt(jobId: string, attempt: JobAttempt): Promise<void> {
    this.#check();
    const kept = this.#attempts.get(jobId) ?? [];
    kept.push(boundedAttempt(structuredClone(attempt)));
    // Start and end entries both, until the cap: attemptHistory keeps the last of each.
    this.#attempts.set(jobId, kept.slice(-2 * ATTEMPTS_KEPT));
  }

  async listAttempts(jobId: string): Promise<JobAttempt[]> {
    this.#check();
    return attemptHistory(structuredClone(this.#attempts.get(jobId) ?? []));
  }

  /** A scan of every record: this store is for tests and benchmarks, not for large histories. */
  async searchJobs(filter: JobSearchFilter, limit: number, cursor?: string): Promise<JobSearchPage> {
    this.#check();
    const after = cursor === undefined ? undefined : decodeJobCursor(cursor);
    const rows = [...this.#jobs.values()]
      .filter(
        (j) =>
          (filter.status === undefined || j.status === filter.status) &&
          (filter.type === undefined || j.type === filter.type) &&
          (filter.queue === undefined || j.queue === filter.queue) &&
          (filter.q === undefined ||
            j.id === filter.q ||
            j.idempotencyKey === filter.q ||
            (j.lastError ?? '').includes(filter.q)) &&
          (after === undefined || newerFirst(j, after) > 0),
      )
      .sort(newerFirst)
      .slice(0, limit + 1);
    return jobSearchPage(
      rows.map(({ payload: _payload, payloadTruncated: _truncated, ...j }) => structuredClone(j)),
      limit,
    );
  }

  /** Every job record, for assertions. */
  jobs(): JobRecord[] {
    return [...this.#jobs.values()].map((j) => structuredClone(j));
  }

  async ping(): Promise<void> {
    this.#check();
  }

  async close(): Promise<void> {}

  #check(): void {
    if (this.failWith) throw this.failWith;
  }
}

/** Newest first: below 0 when a comes before b (createdAt, then id, both descending). */
function newerFirst(a: Pick<JobRecord, 'createdAt' | 'id'>, b: Pick<JobRecord, 'createdAt' | 'id'>): number {
  const at = Date.parse(b.createdAt) - Date.parse(a.createdAt);
  if (at !== 0) return at;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}
