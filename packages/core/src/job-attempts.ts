/**
 * A job's attempt history: one entry per run of its handler by a worker, what GET /v1/jobs/:id
 * lists as `attempts` and the dashboard's job page shows. Written by the worker runtime's
 * outcome hook (app-runtime's createJobRecorder): once when an attempt starts (no outcome yet)
 * and once when it ends, the second write replacing the first. An attempt that never ends
 * (its worker was killed) keeps its start alone; the next attempt follows it.
 */

/** How an attempt ended: the job's status right after it. */
export type AttemptOutcome = 'succeeded' | 'retrying' | 'dead' | 'cancelled';

export interface JobAttempt {
  /** The delivery's attempt number (1 for the first); a redrive starts again from 1. */
  attempt: number;
  /** ISO 8601. With `attempt`, what names the entry: the end's write replaces the start's. */
  startedAt: string;
  /** When the worker settled it (ack, retry or dead letter), just after its handler returned. */
  endedAt?: string;
  durationMs?: number;
  /** The worker process that ran it: its id in GET /v1/workers (host:pid:suffix). */
  worker?: string;
  /** Absent while it runs, or when its worker died mid-attempt. */
  outcome?: AttemptOutcome;
  /** The failure's message, at most ATTEMPT_ERROR_CHARS. */
  error?: string;
  /** The failure's stack, at most ATTEMPT_STACK_CHARS. */
  stack?: string;
}

/** How many attempts a job's history keeps: the newest, by start. */
export const ATTEMPTS_KEPT = 25;
export const ATTEMPT_ERROR_CHARS = 2_000;
export const ATTEMPT_STACK_CHARS = 8_000;

/**
 * Where attempt histories live: every StateStore of polyqueue has these two methods (optional
 * on JobStateStore, as searchJobs is, so a hand-written test store need not).
 */
export interface JobAttemptLog {
  /**
   * Writes an attempt: a new entry, or the replacement of the one with the same attempt and
   * startedAt. One write; the store drops the oldest entries past ATTEMPTS_KEPT.
   */
  recordAttempt(jobId: string, attempt: JobAttempt): Promise<void>;
  /** The job's attempts, oldest first; [] for a job with none (or unknown). */
  listAttempts(jobId: string): Promise<JobAttempt[]>;
}

/** `text` cut to `max` characters, saying so. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The stack of a thrown value, bounded; undefined for a value that has none. */
export function attemptStack(failure: unknown): string | undefined {
  const stack = failure instanceof Error ? failure.stack : undefined;
  return stack ? clip(stack, ATTEMPT_STACK_CHARS) : undefined;
}

/**
 * The history a store read, as listAttempts answers it: one entry per attempt (the last write
 * of each wins: a store that appends, like Redis, holds a start and an end), oldest first, at
 * most ATTEMPTS_KEPT.
 */
export function attemptHistory(entries: readonly JobAttempt[]): JobAttempt[] {
  const byRun = new Map<string, JobAttempt>();
  for (const entry of entries) byRun.set(`${entry.startedAt}#${entry.attempt}`, entry);
  return [...byRun.values()]
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.attempt - b.attempt)
    .slice(-ATTEMPTS_KEPT);
}

/** The attempt as a store keeps it: its error and stack cut to their bounds. */
export function boundedAttempt(a: JobAttempt): JobAttempt {
  const bounded = { ...a };
  if (a.error !== undefined) bounded.error = clip(a.error, ATTEMPT_ERROR_CHARS);
  if (a.stack !== undefined) bounded.stack = clip(a.stack, ATTEMPT_STACK_CHARS);
  return bounded;
}

/** A SQL store's row of an attempt (null for an absent field). */
export interface AttemptColumns<Time = string> {
  job_id: string;
  attempt: number;
  started_at: Time;
  ended_at: Time | null;
  duration_ms: number | null;
  worker: string | null;
  outcome: AttemptOutcome | null;
  error: string | null;
  stack: string | null;
}

export function attemptToColumns(jobId: string, a: JobAttempt): AttemptColumns {
  return {
    job_id: jobId,
    attempt: a.attempt,
    started_at: a.startedAt,
    ended_at: a.endedAt ?? null,
    duration_ms: a.durationMs ?? null,
    worker: a.worker ?? null,
    outcome: a.outcome ?? null,
    error: a.error === undefined ? null : clip(a.error, ATTEMPT_ERROR_CHARS),
    stack: a.stack === undefined ? null : clip(a.stack, ATTEMPT_STACK_CHARS),
  };
}

export function attemptFromColumns(row: AttemptColumns<string | Date>): JobAttempt {
  const iso = (t: string | Date) => (typeof t === 'string' ? t : t.toISOString());
  const attempt: JobAttempt = { attempt: Number(row.attempt), startedAt: iso(row.started_at) };
  if (row.ended_at !== null) attempt.endedAt = iso(row.ended_at);
  if (row.duration_ms !== null) attempt.durationMs = Number(row.duration_ms);
  if (row.worker !== null) attempt.worker = row.worker;
  if (row.outcome !== null) attempt.outcome = row.outcome;
  if (row.error !== null) attempt.error = row.error;
  if (row.stack !== null) attempt.stack = row.stack;
  return attempt;
}

/**
 * Whether a store should drop a job's oldest attempts after this write: only a write that
 * can take the history past ATTEMPTS_KEPT. Within one run to the dead letters a job has at
 * most maxAttempts; a redrive or a retry starts another run only from `dead`, so trimming when
 * an attempt ends dead, or when one numbered past the cap starts, bounds it, and the common
 * write (a start, or a success) costs one statement.
 */
export function attemptWriteTrims(a: JobAttempt): boolean {
  return a.outcome === 'dead' || a.attempt > ATTEMPTS_KEPT;
}
