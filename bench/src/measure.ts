/** Small helpers shared by the framework run and the baselines. */

export interface Rates {
  /** Jobs accepted by the broker per second (durable publish). */
  enqueuePerSec: number;
  /** Jobs taken, handled by a no-op and acked, per second. */
  processPerSec: number;
}

export interface Latency {
  p50Ms: number;
  p99Ms: number;
}

export function perSecond(count: number, startedAt: number): number {
  const seconds = (performance.now() - startedAt) / 1000;
  return seconds > 0 ? count / seconds : Number.POSITIVE_INFINITY;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Resolves when `tick()` has counted `target` jobs, checking after each handled job or batch. */
export class Countdown {
  #done = 0;
  #resolve!: () => void;
  readonly finished: Promise<void>;
  constructor(private readonly target: number) {
    this.finished = new Promise((r) => {
      this.#resolve = r;
    });
    if (target === 0) this.#resolve();
  }
  /** Counts `n` more handled jobs (one by default). */
  tick(n = 1): void {
    this.#done += n;
    if (this.#done >= this.target) this.#resolve();
  }
}

export function fmt(n: number, digits = 0): string {
  return Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';
}
