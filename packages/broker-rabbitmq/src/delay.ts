import { DELAY_TIERS_MS } from './config';

/**
 * Delayed delivery through TTL tier queues.
 *
 * RabbitMQ expires messages only from the head of a queue, so one queue with per-message
 * expiration lets a 1-hour message hold back a 1-second one behind it. Instead each logical
 * queue has a few tier queues (DELAY_TIERS_MS) whose x-message-ttl applies to every message:
 * they expire in arrival order and dead-letter back to the work queue.
 *
 * A delay is carried out by hopping: the message carries its due time in the
 * `x-polyqueue-deliver-at` header and goes to the longest tier that does not pass that time.
 * When it comes back to the work queue, the consumer hands it to the handler if it is due, or
 * sends it on its next hop. The total is never shorter than the delay, and longer by at most
 * the shortest tier (plus the time spent behind a backlog in the work queue).
 */

/** Epoch milliseconds before which the message must not reach a handler. */
export const DELIVER_AT_HEADER = 'x-polyqueue-deliver-at';

/**
 * The tier for the next hop of a message still `remainingMs` from due: the longest tier not
 * longer than the wait, or the shortest tier when the wait is shorter than every tier.
 */
export function tierIndexFor(remainingMs: number, tiers: readonly number[] = DELAY_TIERS_MS): number {
  let chosen = 0;
  for (let i = 0; i < tiers.length; i++) {
    if (tiers[i]! <= remainingMs) chosen = i;
  }
  return chosen;
}

/** The hops (tier lengths) a message takes for a delay when it returns on time; for docs and tests. */
export function hopsFor(delayMs: number, tiers: readonly number[] = DELAY_TIERS_MS): number[] {
  const hops: number[] = [];
  let remaining = delayMs;
  while (remaining > 0) {
    const tier = tiers[tierIndexFor(remaining, tiers)]!;
    hops.push(tier);
    remaining -= tier;
  }
  return hops;
}

/** The due time a delivery's headers record, or undefined when it is not delayed. */
export function deliverAtOf(headers: Record<string, unknown> | undefined): number | undefined {
  const value = headers?.[DELIVER_AT_HEADER];
  const parsed = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isFinite(parsed) ? parsed : undefined;
}

/**
 * The headers to publish again with: the broker's own dead-lettering records (x-death and
 * friends) are dropped, so a message hopping for a day does not grow with every hop.
 */
export function republishHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name === 'x-death' || name.startsWith('x-first-death-') || name.startsWith('x-last-death-')) continue;
    kept[name] = value;
  }
  return kept;
}
