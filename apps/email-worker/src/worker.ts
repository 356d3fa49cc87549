import { resolve } from 'node:path';
import { runWorkerProcess } from '@polyqueue/app-runtime';
import { redact } from '@polyqueue/core';
import { queueForJobType } from '@polyqueue/jobs';
import { domainOf, type EmailWorkerConfig } from './config';
import { createEmailHandler } from './handler';
import { createOutboxTransport, createSmtpTransport, type MailTransport } from './transport';

/** The transport SMTP_URL selects: pooled SMTP, or the .eml file outbox when it is unset. */
export function transportFor(config: EmailWorkerConfig): MailTransport {
  return config.SMTP_URL
    ? createSmtpTransport(config.SMTP_URL, config.SMTP_POOL_SIZE)
    : createOutboxTransport(config.OUTBOX_DIR);
}

/** The email worker process: consumes the `email` queue until SIGTERM / SIGINT, then drains. */
export async function runEmailWorker(
  config: EmailWorkerConfig,
  env: Record<string, string | undefined>,
): Promise<void> {
  await runWorkerProcess({
    name: 'email-worker',
    queue: queueForJobType.send_email,
    env,
    config,
    async setup({ logger }) {
      const transport = transportFor(config);
      logger.info(
        transport.kind === 'smtp'
          ? { transport: 'smtp', smtp: redact(config.SMTP_URL!), pool: config.SMTP_POOL_SIZE }
          : { transport: 'outbox', outbox: resolve(config.OUTBOX_DIR) },
        'email transport ready',
      );
      const sendEmail = createEmailHandler(transport, {
        from: config.MAIL_FROM,
        messageIdDomain: config.MESSAGE_ID_DOMAIN ?? domainOf(config.MAIL_FROM) ?? 'polyqueue.local',
      });
      return { handlers: { send_email: sendEmail }, close: () => transport.close() };
    },
  });
}
