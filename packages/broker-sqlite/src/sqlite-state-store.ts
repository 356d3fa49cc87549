/**
 * Job status and idempotency claims in a SQLite file (STATE_URL=sqlite:<path>, the default).
 * Claims are one INSERT ... ON CONFLICT statement, atomic under SQLite's write lock, so two
 * processes cannot both claim a key. Each claim row names its owner; renew, complete and
 * release are single statements guarded by it.
 */
import {
  CLAIMED,
  type ClaimEntry,
  type ClaimResult,
  type CompleteEntry,
  type CreateJobResult,
  DEFAULT_DONE_TTL_MS,
  decodeJobCursor,
  type JobAttempt,
  type JobColumns,
  type JobPatch,
  type JobRecord,
  type JobSearchFilter,
  type JobSearchPage,
  type JobStatus,
  jobFromColumns,
  jobSearchPage,
  LISTED_JOB_COLUMNS,
  payloadText,
  type StateStore,
} from '@polyqueue/core';
import { type Db, openDatabase, WriteBatcher, type WriteOptions } from './database';
import { SqliteJobAttempts } from './sqlite-job-attempts';

/**
 * The writes that commit without a WAL sync (WriteOptions.sync): their loss on a power cut is
 * undone by what the power cut causes anyway. A claim, its renewal, a `processing` mark, an
 * attempt's start and a progress note all belong to a job that has not finished: with every
 * worker of the machine gone, its delivery comes back and is run again, whether or not they
 * survived (a surviving claim only makes the rerun wait for its lease). What a job's end writes
 * (its done mark, its final record, the attempt's end) stays synced, and syncs these with it;
 * so does everything the API writes before answering. A process crash loses none of them.
 */
const UNSYNCED: WriteOptions = { sync: false };

/** better-sqlite3 returns the ISO text the store wrote. */
type JobRow = JobColumns<string>;

/** searchJobs' statement: null for a filter not given. */
interface SearchParams {
  status: string | null;
  type: string | null;
  queue: string | null;
  q: string | null;
  after_at: string | null;
  after_id: string | null;
  limit: number;
}

export class SqliteStateStore implements StateStore {
  /** Its writes share a commit per event-loop turn (#jobWrites): the runtime need not coalesce them. */
  readonly groupCommit = true;
  readonly #db: Db;
  /**
   * Every write of this store (job records, claims, done marks) asked for in one event-loop turn
   * shares one commit (one sync).
   */
  readonly #jobWrites: WriteBatcher;
  readonly #insertJob;
  readonly #jobById;
  readonly #jobByKey;
  readonly #updateJob;
  readonly #searchJobs;
  readonly #claim;
  readonly #renew;
  readonly #readClaim;
  readonly #complete;
  readonly #release;
  readonly #attempts: SqliteJobAttempts;

  /** This store's commits so far, synced and not (tests; a profile of a worker). */
  get commits(): Readonly<{ synced: number; unsynced: number }> {
    return this.#jobWrites.commits;
  }

  constructor(path: string) {
    this.#db = openDatabase(path);
    // Only awaited writes go through it (no defer), so a deferred failure cannot happen.
    this.#jobWrites = new WriteBatcher(this.#db, () => {});
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS polyqueue_jobs (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        queue TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        result TEXT,
        idempotency_key TEXT UNIQUE,
        request_hash TEXT,
        progress TEXT,
        payload TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS polyqueue_idempotency (
        key TEXT PRIMARY KEY,
        done INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        expires_at INTEGER NOT NULL,
        owner TEXT
      );`);
    // Files made before claims had owners.
    const columns = this.#db.prepare<[], { name: string }>('PRAGMA table_info(polyqueue_idempotency)').all();
    if (!columns.some((c) => c.name === 'owner'))
      this.#db.exec('ALTER TABLE polyqueue_idempotency ADD COLUMN owner TEXT');
    // Files made before jobs had progress (context.progress).
    const jobColumns = this.#db.prepare<[], { name: string }>('PRAGMA table_info(polyqueue_jobs)').all();
    if (!jobColumns.some((c) => c.name === 'progress'))
      this.#db.exec('ALTER TABLE polyqueue_jobs ADD COLUMN progress TEXT');
    // ... and before they kept their payload (the dashboard's job page).
    if (!jobColumns.some((c) => c.name === 'payload'))
      this.#db.exec('ALTER TABLE polyqueue_jobs ADD COLUMN payload TEXT');
    // GET /v1/jobs reads newest first; IF NOT EXISTS also gives it to files made before the search.
    this.#db.exec('CREATE INDEX IF NOT EXISTS polyqueue_jobs_created ON polyqueue_jobs (created_at, id)');
    this.#insertJob = this.#db.prepare(
      `INSERT INTO polyqueue_jobs (id, type, queue, status, attempts, last_error, result, idempotency_key, request_hash, progress, payload, created_at, updated_at)
       VALUES (@id, @type, @queue, @status, @attempts, @last_error, @result, @idempotency_key, @request_hash, @progress, @payload, @created_at, @updated_at)
       ON CONFLICT DO NOTHING`,
    );
    this.#jobById = this.#db.prepare<[string], JobRow>('SELECT * FROM polyqueue_jobs WHERE id = ?');
    this.#jobByKey = this.#db.prepare<[string], JobRow>(
      'SELECT * FROM polyqueue_jobs WHERE idempotency_key = ?',
    );
    this.#updateJob = this.#db.prepare(
      `UPDATE polyqueue_jobs SET status = COALESCE(@status, status), attempts = COALESCE(@attempts, attempts),
         last_error = CASE WHEN @has_error THEN @last_error ELSE last_error END,
         result = CASE WHEN @has_result THEN @result ELSE result END,
         progress = COALESCE(@progress, progress), updated_at = @updated_at
       WHERE id = @id AND (@only_if_status IS NULL OR status = @only_if_status)`,
    );
    // Every filter is optional (NULL: any); the index gives the order, so a page stops early.
    this.#searchJobs = this.#db.prepare<[SearchParams], JobRow>(
      `SELECT ${LISTED_JOB_COLUMNS} FROM polyqueue_jobs
       WHERE (@status IS NULL OR status = @status) AND (@type IS NULL OR type = @type)
         AND (@queue IS NULL OR queue = @queue)
         AND (@q IS NULL OR id = @q OR idempotency_key = @q OR instr(last_error, @q) > 0)
         AND (@after_at IS NULL OR created_at < @after_at OR (created_at = @after_at AND id < @after_id))
       ORDER BY created_at DESC, id DESC LIMIT @limit`,
    );
    // Take the key if it is free, its lease (or done record) has expired, or the owner holds it.
    this.#claim = this.#db.prepare(
      `INSERT INTO polyqueue_idempotency (key, done, result, expires_at, owner) VALUES (@key, 0, NULL, @expires, @owner)
       ON CONFLICT (key) DO UPDATE SET done = 0, result = NULL, expires_at = @expires, owner = @owner
       WHERE expires_at <= @now OR (done = 0 AND owner = @owner)`,
    );
    this.#renew = this.#db.prepare(
      'UPDATE polyqueue_idempotency SET expires_at = @expires WHERE key = @key AND owner = @owner AND done = 0',
    );
    this.#readClaim = this.#db.prepare<[string], { done: number; result: string | null; expires_at: number }>(
      'SELECT done, result, expires_at FROM polyqueue_idempotency WHERE key = ?',
    );
    // Done rows have no owner; a key another owner has taken meanwhile is left to that owner.
    this.#complete = this.#db.prepare(
      `INSERT INTO polyqueue_idempotency (key, done, result, expires_at, owner) VALUES (@key, 1, @result, @expires, NULL)
       ON CONFLICT (key) DO UPDATE SET done = 1, result = excluded.result, expires_at = excluded.expires_at, owner = NULL
       WHERE owner = @owner OR owner IS NULL`,
    );
    this.#release = this.#db.prepare(
      'DELETE FROM polyqueue_idempotency WHERE key = ? AND owner = ? AND done = 0',
    );
    this.#attempts = new SqliteJobAttempts(this.#db);
  }

  /**
   * Resolves once the record is committed (and synced), together with the other job writes of
   * this event-loop turn: concurrent API requests share one transaction. The existing record of
   * a key is read inside that transaction, so it is the one the insert conflicted with.
   */
  async createJob(record: JobRecord): Promise<CreateJobResult> {
    const row = toRow(record);
    return this.#jobWrites.write((): CreateJobResult => {
      if (this.#insertJob.run(row).changes === 1) return { created: true };
      const existing =
        (record.idempotencyKey !== undefined ? this.#jobByKey.get(record.idempotencyKey) : undefined) ??
        this.#jobById.get(record.id);
      if (!existing)
        throw new Error(`job ${record.id} was not inserted and no job holds its id or idempotency key`);
      return { created: false, existing: jobFromColumns(existing) };
    });
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const row = this.#jobById.get(id);
    return row ? jobFromColumns(row) : undefined;
  }

  /** Like createJob, shares the commit of this event-loop turn; resolves once committed. */
  async updateJob(id: string, patch: JobPatch, onlyIfStatus?: JobStatus): Promise<boolean> {
    const params = {
      id,
      only_if_status: onlyIfStatus ?? null,
      status: patch.status ?? null,
      attempts: patch.attempts ?? null,
      has_error: 'lastError' in patch ? 1 : 0,
      last_error: patch.lastError ?? null,
      has_result: 'result' in patch ? 1 : 0,
      result: patch.result === undefined ? null : JSON.stringify(patch.result),
      progress: patch.progress === undefined ? null : JSON.stringify(patch.progress),
      updated_at: new Date().toISOString(),
    };
    // A job's start and its progress are not synced; its end, a cancel and the API's marks are.
    const sync = patch.status !== undefined && patch.status !== 'processing';
    return this.#jobWrites.write(
      () => this.#updateJob.run(params).changes === 1,
      sync ? undefined : UNSYNCED,
    );
  }

  /** Shares the commit of this event-loop turn with the job record's own write. */
  async recordAttempt(jobId: string, attempt: JobAttempt): Promise<void> {
    // An attempt's start is not synced, its end is (UNSYNCED).
    await this.#jobWrites.write(
      () => this.#attempts.write(jobId, attempt),
      attempt.endedAt === undefined ? UNSYNCED : undefined,
    );
  }

  async listAttempts(jobId: string): Promise<JobAttempt[]> {
    return this.#attempts.list(jobId);
  }

  async searchJobs(filter: JobSearchFilter, limit: number, cursor?: string): Promise<JobSearchPage> {
    const after = cursor === undefined ? undefined : decodeJobCursor(cursor);
    const rows = this.#searchJobs.all({
      status: filter.status ?? null,
      type: filter.type ?? null,
      queue: filter.queue ?? null,
      q: filter.q ?? null,
      after_at: after?.createdAt ?? null,
      after_id: after?.id ?? null,
      limit: limit + 1,
    });
    return jobSearchPage(rows.map(jobFromColumns), limit);
  }

  /**
   * Claims, renewals, done marks and releases share the group commit of the job records
   * (#jobWrites): every write a worker asks for in one event-loop turn (its jobs' claims, their
   * `processing` and `succeeded` records, their done marks) is one transaction, and each answer
   * comes after that commit, as a lone commit's would. The commit syncs the WAL when one of its
   * writes must survive a power cut (UNSYNCED says which need not: claims and renewals do not).
   */
  async claim(key: string, owner: string, leaseMs: number): Promise<ClaimResult> {
    return this.#jobWrites.write(() => this.#claimNow(key, owner, leaseMs), UNSYNCED);
  }

  /** A batch's claims in one transaction: one commit for all of them. */
  async claimMany(entries: readonly ClaimEntry[]): Promise<ClaimResult[]> {
    return this.#jobWrites.write(
      () => entries.map((e) => this.#claimNow(e.key, e.owner, e.leaseMs)),
      UNSYNCED,
    );
  }

  #claimNow(key: string, owner: string, leaseMs: number): ClaimResult {
    const now = Date.now();
    if (this.#claim.run({ key, owner, expires: now + leaseMs, now }).changes === 1) return CLAIMED;
    const row = this.#readClaim.get(key);
    if (!row) return this.#claimNow(key, owner, leaseMs); // released between the two statements
    if (row.done) return { state: 'done', result: row.result === null ? null : JSON.parse(row.result) };
    return { state: 'busy', retryInMs: Math.max(1, row.expires_at - now) };
  }

  async renew(key: string, owner: string, leaseMs: number): Promise<boolean> {
    return this.#jobWrites.write(
      () => this.#renew.run({ key, owner, expires: Date.now() + leaseMs }).changes === 1,
      UNSYNCED,
    );
  }

  async complete(key: string, owner: string, result: unknown, ttlMs?: number): Promise<boolean> {
    return this.#jobWrites.write(() => this.#completeNow(key, owner, result, ttlMs));
  }

  /** A batch's done marks in one transaction: durable together, at one commit. */
  async completeMany(entries: readonly CompleteEntry[]): Promise<boolean[]> {
    return this.#jobWrites.write(() =>
      entries.map((e) => this.#completeNow(e.key, e.owner, e.result, e.ttlMs)),
    );
  }

  #completeNow(key: string, owner: string, result: unknown, ttlMs = DEFAULT_DONE_TTL_MS): boolean {
    const expires = Date.now() + ttlMs;
    return this.#complete.run({ key, owner, result: JSON.stringify(result ?? null), expires }).changes === 1;
  }

  async release(key: string, owner: string): Promise<void> {
    await this.#jobWrites.write(() => this.#release.run(key, owner));
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (!this.#db.open) return;
    this.#jobWrites.flush();
    this.#db.close();
  }
}

function toRow(r: JobRecord): JobRow {
  return {
    id: r.id,
    type: r.type,
    queue: r.queue,
    status: r.status,
    attempts: r.attempts,
    last_error: r.lastError ?? null,
    result: r.result === undefined ? null : JSON.stringify(r.result),
    idempotency_key: r.idempotencyKey ?? null,
    request_hash: r.requestHash ?? null,
    progress: r.progress === undefined ? null : JSON.stringify(r.progress),
    payload: payloadText(r),
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  };
}

export async function createSqliteStateStore(path: string): Promise<StateStore> {
  return new SqliteStateStore(path || './var/state.db');
}
