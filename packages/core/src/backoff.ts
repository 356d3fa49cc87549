export interface BackoffOptions {
  /** The first retry's upper bound, in ms. */
  baseMs: number;
  /** No delay exceeds this, in ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1_000, maxMs: 15 * 60_000 };

/**
 * Exponential backoff with full jitter and a cap (the AWS Architecture Blog's "full jitter"):
 *
 *     delay(attempt) = random() * min(maxMs, baseMs * 2^(attempt - 1))
 *
 * `attempt` is the attempt that just failed (1 for the first). The result is a whole number of
 * milliseconds in [0, min(maxMs, baseMs * 2^(attempt-1))]. Full jitter spreads a burst of
 * failures over the whole window, so retries do not arrive in synchronized waves.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  // 2^exponent overflows to Infinity for large attempts; min() then keeps the cap.
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
}
