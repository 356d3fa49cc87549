/**
 * Loop shapes shared by the best-raw baselines (<broker>-best.ts): a bounded window of
 * requests in flight for publishing, and a fetch-batch / handle / settle-batch loop that
 * overlaps one batch's settle with the next batch's fetch.
 */
import { createEnvelope, encodeEnvelope } from '@polyqueue/core';

/** `jobs` encoded no-op envelopes, cut into chunks of `size`. */
export function bodyChunks(jobs: number, size: number): string[][] {
  const chunks: string[][] = [];
  for (let i = 0; i < jobs; i += size) {
    const n = Math.min(size, jobs - i);
    chunks.push(
      Array.from({ length: n }, (_, k) => encodeEnvelope(createEnvelope('bench_job', { i: i + k }))),
    );
  }
  return chunks;
}

/** Runs `fn` on every item with at most `limit` calls in flight; rejects on the first failure. */
export async function windowed<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * Fetches a batch, hands every job of it to the handler at once, and settles the whole batch in
 * one request once all its handlers resolved: a job is acked only after it was handled, so a
 * crash anywhere leaves it to be redelivered (at-least-once). The settle is not awaited before
 * the next fetch (pipelining), but a settle waits for the one before it, so one is in flight and
 * a failed one stops the loop. Resolves once `jobs` jobs were settled.
 */
export async function batchLoop<T>(
  jobs: number,
  fetch: () => Promise<T[]>,
  handle: (item: T) => Promise<void>,
  settle: (items: T[]) => Promise<void>,
): Promise<void> {
  let fetched = 0;
  let settling: Promise<void> = Promise.resolve();
  while (fetched < jobs) {
    const batch = await fetch();
    if (batch.length === 0) continue;
    fetched += batch.length;
    await Promise.all(batch.map(handle));
    await settling;
    settling = settle(batch);
  }
  await settling;
}
