import { z } from 'zod';

const sendEmailFields = {
  to: z.union([z.email(), z.array(z.email()).min(1).max(50)]),
  subject: z.string().min(1).max(998),
  body: z.string().max(1_000_000).optional(),
  html: z.string().max(1_000_000).optional(),
  template: z.string().min(1).max(100).optional(),
  vars: z.record(z.string(), z.unknown()).optional(),
};

/**
 * send_email as new producers must write it (the HTTP API validates with this): `body` is the
 * plain-text part; `template` + `vars` render both parts.
 */
export const sendEmailPayloadSchema = z
  .object(sendEmailFields)
  .refine((p) => p.body !== undefined || p.html !== undefined || p.template !== undefined, {
    message: 'one of body, html or template is required',
    path: ['body'],
  });

/**
 * send_email as the email worker accepts it from any producer, so the seed article's producers
 * work unchanged: its Q4M worker sent `mail($payload['to'], $payload['subject'],
 * $payload['body'] ?? '')`. A missing (or null) subject is an empty subject; a missing (or null)
 * body with no html and no template is an empty text part. `to` is still required and checked:
 * the article's Python workers failed without it (KeyError). Gives the same type as sendEmailPayloadSchema.
 */
export const sendEmailPayloadAcceptedSchema = z
  .object({
    ...sendEmailFields,
    subject: z.string().max(998).nullish(),
    body: z.string().max(1_000_000).nullish(),
  })
  .transform(({ subject, body, ...rest }): SendEmailPayload => {
    const payload: SendEmailPayload = { ...rest, subject: subject ?? '' };
    if (body != null) payload.body = body;
    else if (rest.html === undefined && rest.template === undefined) payload.body = '';
    return payload;
  });

export type SendEmailPayload = z.infer<typeof sendEmailPayloadSchema>;

export const imageVariantSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, - and _ (at most 32)'),
  width: z.number().int().min(1).max(8192),
  height: z.number().int().min(1).max(8192).optional(),
  fit: z.enum(['cover', 'contain', 'fill', 'inside', 'outside']).optional(),
  format: z.enum(['webp', 'jpeg', 'png', 'avif']).optional(),
  quality: z.number().int().min(1).max(100).optional(),
});

export type ImageVariant = z.infer<typeof imageVariantSchema>;

/** The variants made when a process_image job names none. */
export const DEFAULT_IMAGE_VARIANTS: readonly ImageVariant[] = [
  { name: 'thumbnail', width: 256, height: 256, fit: 'cover', format: 'webp' },
  { name: 'medium', width: 1024, fit: 'inside', format: 'webp' },
];

/** process_image: `path` is relative to the storage root and may not leave it. */
export const processImagePayloadSchema = z.object({
  path: z
    .string()
    .min(1)
    .max(500)
    .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..') && !p.includes('\0'), {
      message: 'must be a relative path inside the storage root (no leading / and no ..)',
    }),
  variants: z
    .array(imageVariantSchema)
    .min(1)
    .max(10)
    .refine((vs) => new Set(vs.map((v) => v.name)).size === vs.length, {
      message: 'variant names must be unique',
    })
    .optional(),
});

export type ProcessImagePayload = z.infer<typeof processImagePayloadSchema>;

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
 * `polyqueue migrate` checks legacy rows with these; a worker's handler names its own.
 */
export const acceptedJobSchemas = {
  send_email: sendEmailPayloadAcceptedSchema,
  process_image: processImagePayloadSchema,
} as const;

export type JobType = keyof typeof jobSchemas;
export type JobPayload<T extends JobType> = z.infer<(typeof jobSchemas)[T]>;

/** The logical queue each job type goes to. */
export const queueForJobType: Record<JobType, string> = {
  send_email: 'email',
  process_image: 'image',
};

export function isJobType(type: string): type is JobType {
  return Object.hasOwn(jobSchemas, type);
}
