/**
 * Collects single requests made in the same moment (acks from handlers finishing together,
 * visibility changes) into SQS batch calls of up to 10 entries, one batcher per queue URL and
 * action. A caller's promise settles with its own entry's outcome, so a partial batch failure
 * fails only the entries SQS rejected.
 */

/** Sends one batch; returns, per item in order, undefined for success or the error for that entry. */
export type BatchSender<T> = (items: readonly T[]) => Promise<(Error | undefined)[]>;

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (error: Error) => void;
}

export const SQS_BATCH_MAX = 10;

export class Batcher<T> {
  #pending: Pending<T>[] = [];
  #scheduled = false;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(private readonly send: BatchSender<T>) {}

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (this.#pending.length >= SQS_BATCH_MAX) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        // One macrotask of patience: handlers settling in the same tick share a request.
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Resolves once every batch already sent has finished (for close()). */
  async idle(): Promise<void> {
    this.#flush();
    await Promise.allSettled([...this.#inFlight]);
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, SQS_BATCH_MAX);
      const request = this.#sendBatch(batch);
      this.#inFlight.add(request);
      void request.finally(() => this.#inFlight.delete(request));
    }
  }

  async #sendBatch(batch: Pending<T>[]): Promise<void> {
    try {
      const outcomes = await this.send(batch.map((p) => p.item));
      batch.forEach((p, i) => {
        const error = outcomes[i];
        if (error) p.reject(error);
        else p.resolve();
      });
    } catch (error) {
      for (const p of batch) p.reject(error as Error);
    }
  }
}

/** Batch entry ids are only unique within one request: the index does. */
export function entryId(index: number): string {
  return `e${index}`;
}

/** Maps a batch response's Failed list back to per-item errors. */
export function batchOutcomes(
  count: number,
  failed: readonly { Id?: string; Code?: string; Message?: string; SenderFault?: boolean }[] | undefined,
  what: string,
): (Error | undefined)[] {
  const outcomes: (Error | undefined)[] = new Array(count).fill(undefined);
  for (const f of failed ?? []) {
    const index = Number(f.Id?.slice(1));
    if (Number.isInteger(index) && index >= 0 && index < count) {
      outcomes[index] = new Error(
        `SQS ${what} failed: ${f.Code ?? 'error'}${f.Message ? ` (${f.Message})` : ''}`,
      );
    }
  }
  return outcomes;
}
