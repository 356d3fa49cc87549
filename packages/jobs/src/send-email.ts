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
