import { defineJob, type JobHandler, NonRetryableError, RetryableError } from '@polyqueue/core';
import { acceptedJobSchemas, type SendEmailPayload } from '@polyqueue/jobs';
import { buildMessage, type MessageOptions } from './message';
import type { MailTransport, SendResult } from './transport';

/**
 * What a send_email job stores as its result (GET /v1/jobs/:id, the dashboard's job page): what
 * the transport reports (Message-ID, SMTP envelope, accepted and rejected recipients, the
 * server's reply or the outbox file) and the message's own From, To and Subject headers.
 */
export interface EmailJobResult extends SendResult {
  from: string;
  to: string[];
  subject: string;
}

/**
 * send_email: builds the message (Message-ID from the job id) and hands it to the transport.
 * SMTP replies decide what happens next: 4xx is temporary, so the job is retried with backoff
 * (no sooner than a minute, as mail servers expect); 5xx is permanent, so the job is
 * dead-lettered with the server's reply as the reason.
 *
 * Payloads are read as every producer may write them (acceptedJobSchemas.send_email), not only
 * as the HTTP API demands: a classic producer's job without a subject or a body is an email with
 * an empty subject or an empty text part, as the seed article's own worker sent it.
 */
export function createEmailHandler(
  transport: MailTransport,
  options: MessageOptions,
): JobHandler<SendEmailPayload, EmailJobResult> {
  return defineJob(acceptedJobSchemas.send_email, async (payload, context) => {
    const message = buildMessage(payload, context.envelope.id, options);
    try {
      // A cancel (DELETE /v1/jobs/:id) closes the SMTP connection carrying the message.
      const sent = await transport.send(message, context.envelope.id, context.signal);
      return { ...sent, ...headersOf(payload, options) };
    } catch (error) {
      if (context.signal.aborted) throw context.signal.reason;
      throw classifySmtpError(error);
    }
  });
}

/** The least delay before retrying after an SMTP 4xx (greylisting usually asks for minutes). */
export const SMTP_TEMPORARY_RETRY_MS = 60_000;

/**
 * Maps a nodemailer error to the runtime's two kinds:
 * - a reply code 5xx -> NonRetryableError "SMTP 550: <server reply>";
 * - a reply code 4xx -> RetryableError, retried no sooner than SMTP_TEMPORARY_RETRY_MS;
 * - no reply code (connection refused, timeout, TLS, DNS, AUTH) -> the error as it is, retried
 *   with backoff: the server or its configuration may come back, the message is still good.
 */
export function classifySmtpError(error: unknown): Error {
  if (error instanceof NonRetryableError || error instanceof RetryableError) return error;
  const e = error as { responseCode?: number; response?: string; code?: string; message?: string };
  const reply = (e.response ?? e.message ?? String(error)).trim();
  const code = e.responseCode;
  if (typeof code === 'number' && code >= 500 && code < 600 && e.code !== 'EAUTH') {
    return new NonRetryableError(`SMTP ${code} (permanent): ${reply}`);
  }
  if (typeof code === 'number' && code >= 400 && code < 500) {
    return new RetryableError(`SMTP ${code} (temporary): ${reply}`, SMTP_TEMPORARY_RETRY_MS, {
      cause: error,
    });
  }
  return error instanceof Error ? error : new Error(reply);
}

/** The From, To and Subject the message carries, as its result keeps them. */
function headersOf(
  payload: SendEmailPayload,
  options: MessageOptions,
): Pick<EmailJobResult, 'from' | 'to' | 'subject'> {
  return {
    from: options.from,
    to: Array.isArray(payload.to) ? payload.to : [payload.to],
    subject: payload.subject ?? '',
  };
}
