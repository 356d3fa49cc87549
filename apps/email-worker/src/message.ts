import type { SendEmailPayload } from '@polyqueue/jobs';
import type Mail from 'nodemailer/lib/mailer';
import { renderTemplate } from './templates';

export interface MessageOptions {
  from: string;
  /** Message-ID is <job id@messageIdDomain>. */
  messageIdDomain: string;
}

/**
 * The message for a send_email job. Its Message-ID derives from the job id, so the same job
 * always produces the same message: a receiver (or the file outbox) can tell a redelivered
 * job's message for the duplicate it is. A template renders both parts; an explicit body or
 * html in the payload replaces the rendered part.
 */
export function buildMessage(
  payload: SendEmailPayload,
  jobId: string,
  options: MessageOptions,
): Mail.Options {
  const rendered = payload.template ? renderTemplate(payload.template, payload.vars) : undefined;
  const text = payload.body ?? rendered?.text;
  const html = payload.html ?? rendered?.html;
  return {
    from: options.from,
    to: payload.to,
    subject: payload.subject,
    ...(text !== undefined ? { text } : {}),
    ...(html !== undefined ? { html } : {}),
    messageId: messageIdFor(jobId, options.messageIdDomain),
    headers: { 'X-Polyqueue-Job-Id': jobId },
  };
}

/** `<job-id@domain>`; characters not allowed in a Message-ID's left part are replaced. */
export function messageIdFor(jobId: string, domain: string): string {
  const local = jobId.replace(/[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]/g, '_').replace(/^\.+|\.+$/g, '') || 'job';
  return `<${local}@${domain}>`;
}
