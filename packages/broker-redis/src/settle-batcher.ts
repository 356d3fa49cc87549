/**
 * Settles one consumer sends together: one settle script call with many jobs instead of one
 * call per job. At most one batch is in flight; settles asked for meanwhile wait and go out as
 * the next batch when it is answered, so under load batches grow by themselves and when idle a
 * lone settle goes out in the same tick it was asked for (no timer). Each settle's promise
 * settles only with the reply to its own batch: resolved, the job is settled in Redis exactly
 * as after its own script call; rejected, the batch (or that job's part of it) failed.
 */

/** The script's answer for one job: 1 applied, 0 not applicable (already settled, lease lost). */
export type SettleResult = 0 | 1;

/** One job's settle: its script ARGV, in the order the batched script reads them. */
export type SettleArgs = readonly (string | number)[];

/**
 * Sends one batch: the script's reply holds one entry per job, in order: 1 or 0, or the error
 * text of a command that failed for that job alone.
 */
export type SendBatch = (items: readonly SettleArgs[]) => Promise<unknown>;

/** Bounds one script call's ARGV and the time it holds the server. */
export const MAX_BATCH = 500;

interface Waiting {
  args: SettleArgs;
  resolve: (result: SettleResult) => void;
  reject: (error: Error) => void;
}

export class SettleBatcher {
  readonly #send: SendBatch;
  readonly #maxBatch: number;
  #waiting: Waiting[] = [];
  #inFlight = false;
  #scheduled = false;
  #onIdle: (() => void)[] = [];

  constructor(send: SendBatch, maxBatch = MAX_BATCH) {
    this.#send = send;
    this.#maxBatch = maxBatch;
  }

  /** Queues one job's settle; resolves with the script's answer for it once Redis replied. */
  settle(args: SettleArgs): Promise<SettleResult> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ args, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Resolves once every settle asked for so far has been answered (or failed). A consumer that
   * stops waits for it before handing back what it still holds, so a settle a handler did not
   * await still reaches Redis first, as when each went out on its own in the order asked.
   */
  idle(): Promise<void> {
    if (!this.#inFlight && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onIdle.push(resolve));
  }

  /**
   * A microtask, not a timer: the settles of handlers that finish in the same tick (a fetched
   * batch of quick jobs) share one call, and nothing waits for a clock.
   */
  #schedule(): void {
    if (!this.#inFlight && this.#waiting.length === 0) {
      for (const resolve of this.#onIdle.splice(0)) resolve();
      return;
    }
    if (this.#inFlight || this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#inFlight || this.#waiting.length === 0) return;
    const batch = this.#waiting.splice(0, this.#maxBatch);
    this.#inFlight = true;
    let sent: Promise<unknown>;
    try {
      sent = this.#send(batch.map((w) => w.args));
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent
      .then(
        (reply) => answer(batch, reply),
        (error: unknown) => {
          const failure = error instanceof Error ? error : new Error(String(error));
          for (const w of batch) w.reject(failure);
        },
      )
      .finally(() => {
        this.#inFlight = false;
        this.#schedule();
      });
  }
}

/** Hands each job its own entry of the script's reply. */
function answer(batch: Waiting[], reply: unknown): void {
  if (!Array.isArray(reply) || reply.length !== batch.length) {
    const error = new Error(
      `settle script answered ${JSON.stringify(reply)} for a batch of ${batch.length} jobs`,
    );
    for (const w of batch) w.reject(error);
    return;
  }
  batch.forEach((w, i) => {
    const result = reply[i];
    if (result === 0 || result === 1) w.resolve(result);
    else w.reject(new Error(String(result)));
  });
}
