import {
  type CreateJobResult,
  type JobPatch,
  type JobRecord,
  type JobStatus,
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
