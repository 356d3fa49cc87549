import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Envelope } from './envelope';

/** What a handler is given beside its payload. */
export interface JobContext {
  envelope: Envelope;
  attempt: number;
  /**
   * Aborted when the job is cancelled (DELETE /v1/jobs/:id; the reason is a JobCancelledError)
   * or when the drain timeout runs out during shutdown: stop and throw. A cancelled job ends
   * `cancelled` and is not retried, whatever the handler then does.
   */
  signal: AbortSignal;
  /** Keeps the delivery's lease alive for ms more (long jobs). */
  extend(ms: number): Promise<void>;
  /**
   * Tells how far the job is: percent from 0 to 100 (clamped; NaN or Infinity throws a
   * RangeError at once, not a rejected promise, so an un-awaited call fails the handler, not the
   * process), message optional (cut at 500 characters). Shown as `progress` by
   * GET /v1/jobs/:id and kept after the job ends. Resolves at once: the record is written in the
   * background, at most once per 250 ms per job with the latest value, and the last value is
   * written before the job's outcome is. A store failure is logged, never thrown here.
   */
  progress(percent: number, message?: string): Promise<void>;
  logger: Logger;
}

/**
 * What a worker runs for one job type. The handler brings its payload's schema: the runtime
 * validates each delivery with it and dead-letters a payload that fails, before any claim or
 * side effect. Core knows no job type, so a handler without a schema gets the payload unchecked.
 */
export interface JobHandler<P = unknown, R = unknown> {
  schema?: z.ZodType<P>;
  handle(payload: P, context: JobContext): Promise<R>;
}

/**
 * A handler with its schema beside it; the payload type is the schema's output (after its
 * transforms and defaults), so what `handle` reads is what was checked.
 */
export function defineJob<S extends z.ZodType, R>(
  schema: S,
  handle: (payload: z.output<S>, context: JobContext) => Promise<R>,
): JobHandler<z.output<S>, R> {
  return { schema: schema as z.ZodType<z.output<S>>, handle };
}
