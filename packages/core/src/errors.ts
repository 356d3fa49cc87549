/**
 * A failure that retrying cannot fix (bad input, a permanent SMTP 5xx, a decompression bomb):
 * the runtime dead-letters the job at once with this message as the reason.
 */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';
}

/** A failure worth retrying, optionally no sooner than retryAfterMs (e.g. an SMTP 4xx). */
export class RetryableError extends Error {
  override name = 'RetryableError';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/**
 * The reason a job's AbortSignal carries when the job was cancelled (DELETE /v1/jobs/:id) while
 * it ran: a handler that throws it (or any error after the abort) ends the job `cancelled`,
 * without a retry.
 */
export class JobCancelledError extends Error {
  override name = 'JobCancelledError';
  constructor(readonly jobId: string) {
    super(`job ${jobId} was cancelled`);
  }
}
