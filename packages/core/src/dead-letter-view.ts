import type { DeadLetter, DeadLetterStore } from './broker';
import { decodeEnvelope } from './envelope';

/** A dead letter as operators read it (the admin API, a dashboard): the envelope's fields unpacked. */
export interface DeadLetterView {
  /** What redrive() takes; the job id where the body is an envelope. */
  id: string;
  /** The job type; null when the body is not a message polyqueue can read (see `body`). */
  type: string | null;
  /** The envelope's attempt; null for an unreadable body. */
  attempt: number | null;
  /** Why it was dead-lettered: the last error, or why the body could not be read. */
  reason: string;
  /** ISO timestamp. */
  deadAt: string;
  payload: unknown;
  /** The raw body, only when it is not an envelope (nothing else shows it then). */
  body?: string;
}

export function describeDeadLetter(letter: DeadLetter): DeadLetterView {
  const decoded = decodeEnvelope(letter.body, letter.id);
  const base = { id: letter.id, reason: letter.reason, deadAt: letter.deadAt };
  if (!decoded.ok) return { ...base, type: null, attempt: null, payload: null, body: letter.body };
  return {
    ...base,
    type: decoded.envelope.type,
    attempt: decoded.envelope.attempt,
    payload: decoded.envelope.payload,
  };
}

/**
 * The ids among `ids` that are not in the store now. The store lists only from the oldest, so
 * this reads up to `bound` letters (the queue's dead count from stats(), plus a margin for
 * letters that arrive meanwhile); a letter past the bound counts as missing.
 */
export async function missingDeadLetters(
  store: Pick<DeadLetterStore, 'list'>,
  ids: readonly string[],
  bound: number,
): Promise<string[]> {
  const present = new Set((await store.list(bound)).map((d) => d.id));
  return [...new Set(ids)].filter((id) => !present.has(id));
}

// Bulk redrive by reason, and bulk retry / cancel by search (issue 17), exported beside the
// dead-letter helpers they build on.
export * from './bulk-jobs';
