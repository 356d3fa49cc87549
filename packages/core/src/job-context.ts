import type { Logger } from 'pino';
import type { Delivery } from './broker';
import { jobSignal, type RunningJob } from './cancellation';
import type { Envelope } from './envelope';
import type { JobContext } from './job-handler';

/** One per job; a class, not an object of closures, as it is made on every delivery. */
export class RuntimeJobContext implements JobContext {
  #logger: Logger | undefined;

  constructor(
    readonly envelope: Envelope,
    readonly attempt: number,
    private readonly delivery: Delivery,
    private readonly job: RunningJob,
    private readonly hardStop: AbortSignal,
    private readonly parentLogger: Logger,
  ) {}

  /** Made on first use: aborts on the drain timeout or when the job is cancelled. */
  get signal(): AbortSignal {
    return jobSignal(this.job, this.hardStop);
  }

  extend(ms: number): Promise<void> {
    return this.delivery.extend(ms);
  }

  /** Made on first use: most handlers never log, and a child logger per job is not free. */
  get logger(): Logger {
    this.#logger ??= this.parentLogger.child({ jobId: this.envelope.id, type: this.envelope.type });
    return this.#logger;
  }
}
