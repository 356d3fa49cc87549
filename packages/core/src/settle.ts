/** The outcomes of a delivery (broker.ts, Delivery): exactly one of them, once. */
export type SettleOutcome = 'ack' | 'retry' | 'deadLetter';

/**
 * A delivery was asked for a second outcome: ack then retry, ack then ack, deadLetter then
 * ack. Every driver rejects that second call with this error before it touches the broker, so
 * the first outcome stands and nothing is published, deleted or moved twice.
 *
 * Drivers keep a boolean per delivery and throw this when it is already set: one field check
 * on the per-message path, no closure.
 */
export class AlreadySettledError extends Error {
  override name = 'AlreadySettledError';

  constructor(
    /** The delivery's messageId. */
    readonly messageId: string,
    /** The outcome that was refused (the second one). */
    readonly outcome: SettleOutcome,
  ) {
    super(`delivery ${messageId} is already settled; ${outcome}() refused`);
  }
}
