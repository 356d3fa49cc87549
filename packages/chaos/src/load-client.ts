/**
 * The chaos run's client: posts N emails to POST /v1/emails, `concurrency` at a time and paced
 * at `ratePerS`, each with its own Idempotency-Key, and retries every request that failed or got
 * no answer (connection refused while the API is down, a timeout, 5xx, 429) with the same key
 * and body until it is answered, bounded by `giveUpAt`. That is what a careful client of an
 * idempotent API does; the run then checks that the API kept its side of the bargain.
 */
import { sleep } from './processes';

export interface PostedJob {
  index: number;
  key: string;
  /** Job id of the 202 that answered the key. */
  jobId?: string;
  /** ms on the run's clock when the 202 arrived. */
  acceptedAt?: number;
  /** The 202 carried Idempotent-Replayed: true. */
  replayed: boolean;
  /** HTTP requests sent for this key. */
  attempts: number;
  /** Why earlier attempts were retried: "refused", "timeout", "503", ... -> count. */
  retried: Record<string, number>;
  /** A 4xx answer the client does not retry (a bug in the run or the API). */
  rejected?: string;
}

export interface LoadClientOptions {
  baseUrl: string;
  runId: string;
  count: number;
  concurrency: number;
  ratePerS: number;
  requestTimeoutMs: number;
  /** ms on the run's clock: stop retrying after this. */
  giveUpAt: number;
  now: () => number;
}

export class LoadClient {
  readonly jobs: PostedJob[];
  private inFlightRequests = 0;
  private startedAt = 0;

  constructor(private readonly options: LoadClientOptions) {
    this.jobs = Array.from({ length: options.count }, (_, index) => ({
      index,
      key: `chaos-${options.runId}-${index}`,
      replayed: false,
      attempts: 0,
      retried: {},
    }));
  }

  /** Requests sent and not answered yet. */
  outstanding(): number {
    return this.inFlightRequests;
  }

  accepted(): number {
    return this.jobs.filter((job) => job.jobId !== undefined).length;
  }

  /** Resolves when every job was answered (202 or a 4xx) or the client gave up. */
  async run(): Promise<void> {
    this.startedAt = this.options.now();
    let next = 0;
    const lane = async () => {
      while (next < this.jobs.length) {
        const job = this.jobs[next++]!;
        const slot = this.startedAt + (job.index * 1000) / this.options.ratePerS;
        const wait = slot - this.options.now();
        if (wait > 0) await sleep(wait);
        await this.post(job);
      }
    };
    await Promise.all(Array.from({ length: this.options.concurrency }, lane));
  }

  private async post(job: PostedJob): Promise<void> {
    const body = JSON.stringify({
      to: `user${job.index}@chaos.test`,
      subject: `chaos ${this.options.runId} #${job.index}`,
      body: `Job ${job.index} of a chaos run.`,
    });
    for (let retry = 0; this.options.now() < this.options.giveUpAt; retry++) {
      job.attempts++;
      this.inFlightRequests++;
      let reason: string;
      try {
        const res = await fetch(`${this.options.baseUrl}/v1/emails`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': job.key },
          body,
          signal: AbortSignal.timeout(this.options.requestTimeoutMs),
        });
        const text = await res.text();
        if (res.status === 202) {
          job.jobId = (JSON.parse(text) as { id: string }).id;
          job.acceptedAt = this.options.now();
          job.replayed = res.headers.get('idempotent-replayed') === 'true';
          return;
        }
        if (res.status >= 400 && res.status < 500 && res.status !== 429 && res.status !== 408) {
          job.rejected = `${res.status} ${text.slice(0, 200)}`;
          return;
        }
        reason = String(res.status);
      } catch (error) {
        reason = describeFailure(error);
      } finally {
        this.inFlightRequests--;
      }
      job.retried[reason] = (job.retried[reason] ?? 0) + 1;
      // Capped exponential backoff with jitter, as a client library would.
      await sleep(Math.random() * Math.min(2_000, 100 * 2 ** retry));
    }
  }
}

function describeFailure(error: unknown): string {
  const e = error as { name?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout';
  if (e.cause?.code === 'ECONNREFUSED') return 'refused';
  if (e.cause?.code === 'ECONNRESET' || e.cause?.code === 'UND_ERR_SOCKET') return 'reset';
  return e.cause?.code ?? e.name ?? 'error';
}
