import type { z } from 'zod';
import { processImagePayloadSchema } from './process-image';
import { sendEmailPayloadAcceptedSchema, sendEmailPayloadSchema } from './send-email';

/**
 * Every job type polyqueue knows, with its payload schema as new producers must write it (the
 * HTTP API's); the key is the envelope's `type`.
 */
export const jobSchemas = {
  send_email: sendEmailPayloadSchema,
  process_image: processImagePayloadSchema,
} as const;

/**
 * Every job type with the schema its worker accepts from any producer, the seed article's
 * classic ones included (docs/wire-format.md, "What the API demands, what the workers accept").
 * The workers' handlers are defined with these, and `polyqueue migrate` checks legacy rows with
 * them, so a row is refused only when its worker would dead-letter it.
 */
export const acceptedJobSchemas = {
  send_email: sendEmailPayloadAcceptedSchema,
  process_image: processImagePayloadSchema,
} as const satisfies Record<JobType, z.ZodType>;

export type JobType = keyof typeof jobSchemas;
export type JobPayload<T extends JobType> = z.infer<(typeof jobSchemas)[T]>;

/** The logical queue each job type goes to; the worker that consumes a queue handles its types. */
export const queueForJobType = {
  send_email: 'email',
  process_image: 'image',
} as const satisfies Record<JobType, string>;

export type JobQueue = (typeof queueForJobType)[JobType];

/**
 * Every logical queue, each once, in catalogue order: what the operators' views list (the API's
 * queue-depth gauge, `polyqueue stats` without arguments).
 */
export const jobQueues: readonly JobQueue[] = [...new Set(Object.values(queueForJobType))];

export function isJobType(type: string): type is JobType {
  return Object.hasOwn(jobSchemas, type);
}
