/**
 * What every Redis delivery reads from its body: the envelope id (messageId) and attempt.
 * Read on first use and from one JSON.parse for both, as messageIdOf + attemptOf would give
 * them: the runtime decodes the body itself, so reading it here more than once is pure cost.
 */
export abstract class BodyDelivery {
  readonly body: string;
  #messageId: string | undefined;
  #attempt = 0;

  constructor(body: string) {
    this.body = body;
  }

  /** The id of a body without one (foreign or malformed); asked at most once per delivery. */
  protected abstract fallbackId(): string;

  get messageId(): string {
    if (this.#messageId === undefined) this.#read();
    return this.#messageId as string;
  }

  get attempt(): number {
    if (this.#attempt === 0) this.#read();
    return this.#attempt;
  }

  #read(): void {
    let id: unknown;
    let attempt: unknown;
    try {
      const json = JSON.parse(this.body) as { id?: unknown; attempt?: unknown } | null;
      id = json?.id;
      attempt = json?.attempt;
    } catch {
      // Unreadable: the fallback id and attempt 1, as for a body without them.
    }
    this.#messageId = typeof id === 'string' && id.length > 0 ? id : this.fallbackId();
    // As core's attemptOf: 1 when absent or not a whole number >= 1.
    this.#attempt = typeof attempt === 'number' && Number.isInteger(attempt) && attempt >= 1 ? attempt : 1;
  }
}
