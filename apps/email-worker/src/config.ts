import { workerEnvShape } from '@polyqueue/app-runtime';
import { intVariable, parseEnv, urlVariable } from '@polyqueue/core';
import { z } from 'zod';

/** The email worker's environment, parsed once at start. */
export const emailWorkerEnvSchema = z.object({
  ...workerEnvShape,
  /**
   * smtp://user:pass@host:587 (STARTTLS when offered) or smtps://host:465. Unset: messages are
   * written as .eml files to OUTBOX_DIR instead of being sent.
   */
  SMTP_URL: urlVariable(['smtp:', 'smtps:']).optional(),
  /** Pooled SMTP connections kept open. */
  SMTP_POOL_SIZE: intVariable(5, 1, 100),
  OUTBOX_DIR: z.string().trim().min(1).default('./var/outbox'),
  /** The From header. */
  MAIL_FROM: z.string().trim().min(3).default('polyqueue <no-reply@polyqueue.local>'),
  /** The right-hand side of Message-ID <job-id@domain>; defaults to MAIL_FROM's domain. */
  MESSAGE_ID_DOMAIN: z
    .string()
    .regex(/^[A-Za-z0-9.-]+$/, 'must be a domain name')
    .optional(),
});

export type EmailWorkerConfig = z.infer<typeof emailWorkerEnvSchema>;

export function loadEmailWorkerConfig(env: Record<string, string | undefined>): EmailWorkerConfig {
  return parseEnv(emailWorkerEnvSchema, {
    ...env,
    SMTP_URL: env.SMTP_URL || undefined,
    MESSAGE_ID_DOMAIN: env.MESSAGE_ID_DOMAIN || undefined,
  });
}

/** The domain of an address like `Name <user@example.com>` or `user@example.com`. */
export function domainOf(address: string): string | undefined {
  const match = /@([A-Za-z0-9.-]+)>?\s*$/.exec(address);
  return match?.[1];
}
