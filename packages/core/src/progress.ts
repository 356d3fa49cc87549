import type { Logger } from 'pino';
import type { JobProgress, JobStateStore } from './state';

/** At most one progress write per job this often: a handler reporting per item costs little. */
export const PROGRESS_WRITE_INTERVAL_MS = 250;

/** How long the worker waits, after the handler returns, for its last progress to be written. */
export const PROGRESS_END_WAIT_MS = 2_000;

/** A longer message is cut here: progress is a status line, not a log. */
export const PROGRESS_MESSAGE_MAX = 500;

/**
 * What context.progress takes, checked: a percent that is not a finite number is a bug in the
 * handler (RangeError); a finite one outside 0..100 is clamped, as rounding can give 100.0001.
 */
export function toProgress(percent: number, message: string | undefined, now: Date): JobProgress {
  if (typeof percent !== 'number' || !Number.isFinite(percent))
    throw new RangeError(
      `context.progress: percent must be a finite number from 0 to 100, got ${String(percent)}`,
    );
  const progress: JobProgress = { percent: Math.min(100, Math.max(0, percent)), at: now.toISOString() };
  if (message !== undefined) progress.message = String(message).slice(0, PROGRESS_MESSAGE_MAX);
  return progress;
}

/**
 * One job's progress writes. A report is kept and written in the background: at once when no
 * write happened in the last interval, else when the interval ends, with only the latest value
 * (the ones between are dropped). One write is in flight at a time, so a slow store is written
 * no faster than it answers and writes cannot land out of order. end() writes what is left; the
 * worker awaits it before recording the job's outcome, so the last value is always stored.
 */
export class ProgressWriter {
  #pending: JobProgress | undefined;
  #lastWriteAt = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> | undefined;
  #ended = false;

  constructor(
    private readonly jobId: string,
    private readonly jobs: Pick<JobStateStore, 'updateJob'> | undefined,
    private readonly logger: Logger,
    private readonly intervalMs = PROGRESS_WRITE_INTERVAL_MS,
  ) {}

  report(progress: JobProgress): void {
    if (this.#ended) return; // a call the handler left running after it returned
    if (!this.jobs) {
      this.logger.debug({ jobId: this.jobId, progress }, 'progress (no job records to write it to)');
      return;
    }
    this.#pending = progress;
    this.#schedule();
  }

  /**
   * Once the handler has returned: writes the value not yet written, if any, and takes no more
   * reports. Resolves when it is stored or its write failed (logged), or after maxWaitMs: a
   * store that does not answer must not hold the job's outcome.
   */
  async end(maxWaitMs = PROGRESS_END_WAIT_MS): Promise<void> {
    this.#ended = true;
    if (!this.#writing && !this.#pending) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gaveUp = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.logger.warn(
          { jobId: this.jobId, maxWaitMs },
          'job progress not written in time; going on without it',
        );
        resolve();
      }, maxWaitMs);
    });
    await Promise.race([this.#drain(), gaveUp]);
    clearTimeout(timer);
  }

  async #drain(): Promise<void> {
    while (this.#writing || this.#pending) {
      if (this.#timer) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      if (this.#writing) await this.#writing;
      else this.#write();
    }
  }

  #schedule(): void {
    if (this.#writing || this.#timer) return; // the write or timer under way takes the latest value
    const wait = this.#lastWriteAt + this.intervalMs - Date.now();
    if (wait <= 0) this.#write();
    else {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, wait);
      this.#timer.unref?.();
    }
  }

  #write(): void {
    const progress = this.#pending;
    if (!progress || !this.jobs) return;
    this.#pending = undefined;
    this.#lastWriteAt = Date.now();
    this.#writing = this.jobs
      .updateJob(this.jobId, { progress })
      .then(
        () => {},
        (error: unknown) =>
          this.logger.warn({ err: error, jobId: this.jobId }, 'could not record the job progress'),
      )
      .finally(() => {
        this.#writing = undefined;
        if (this.#pending) this.#schedule();
      });
  }
}
