import type { Logger } from 'pino';
import type { Delivery } from './broker';
import { jobSignal, type RunningJob } from './cancellation';
import type { Envelope } from './envelope';
import type { JobContext } from './job-handler';
import { ProgressWriter, toProgress } from './progress';
import type { JobStateStore } from './state';

/** What every job context of one worker shares: made once per worker, not per job. */
export interface JobContextShared {
  hardStop: AbortSignal;
  logger: Logger;
  /** Where context.progress is written; without it, progress is only logged at debug. */
  records: Pick<JobStateStore, 'updateJob'> | undefined;
}

/** One per job; a class, not an object of closures, as it is made on every delivery. */
export class RuntimeJobContext implements JobContext {
  #logger: Logger | undefined;
  /** Made on the first context.progress: most handlers never report one. */
  progressWriter: ProgressWriter | undefined;

  constructor(
    readonly envelope: Envelope,
    readonly attempt: number,
    private readonly delivery: Delivery,
    private readonly job: RunningJob,
    private readonly shared: JobContextShared,
  ) {}

  /** Made on first use: aborts on the drain timeout or when the job is cancelled. */
  get signal(): AbortSignal {
    return jobSignal(this.job, this.shared.hardStop);
  }

  extend(ms: number): Promise<void> {
    return this.delivery.extend(ms);
  }

  progress(percent: number, message?: string): Promise<void> {
    const progress = toProgress(percent, message, new Date());
    this.progressWriter ??= new ProgressWriter(this.envelope.id, this.shared.records, this.logger);
    this.progressWriter.report(progress);
    return Promise.resolve();
  }

  /** Made on first use: most handlers never log, and a child logger per job is not free. */
  get logger(): Logger {
    this.#logger ??= this.shared.logger.child({ jobId: this.envelope.id, type: this.envelope.type });
    return this.#logger;
  }
}
