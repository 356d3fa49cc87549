import { randomUUID } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer';

/** What sending one message reports; stored as the job's result. */
export interface SendResult {
  transport: 'smtp' | 'outbox';
  messageId: string;
  accepted: string[];
  rejected: string[];
  /** The SMTP server's final reply, e.g. "250 2.0.0 Ok: queued as 1234". */
  response?: string;
  /** The .eml file written by the outbox. */
  file?: string;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'outbox';
  /** `name` is the outbox file's name (the job id); SMTP ignores it. */
  send(message: Mail.Options, name: string): Promise<SendResult>;
  close(): Promise<void>;
}

/**
 * A pooled SMTP transport: up to poolSize connections stay open across jobs, so each message
 * costs one SMTP transaction instead of a connect + EHLO + STARTTLS + AUTH. Errors keep
 * nodemailer's `responseCode` / `response` / `code` for classifySmtpError.
 */
export function createSmtpTransport(url: string, poolSize: number): MailTransport {
  const transporter = nodemailer.createTransport({
    url,
    pool: true,
    maxConnections: poolSize,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  return {
    kind: 'smtp',
    async send(message) {
      const info = await transporter.sendMail(message);
      return {
        transport: 'smtp',
        messageId: info.messageId,
        accepted: addresses(info.accepted),
        rejected: addresses(info.rejected),
        response: info.response,
      };
    },
    async close() {
      transporter.close();
    },
  };
}

/**
 * The file outbox: each message is built by nodemailer into a real RFC 5322 message (MIME
 * parts, encoded headers, CRLF line ends) and written to <dir>/<name>.eml. The file is
 * written under a temporary name and renamed, and named by the job id, so a redelivered job
 * replaces its own message instead of adding a second one.
 */
export function createOutboxTransport(dir: string): MailTransport {
  const builder = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  // nodemailer's composer leaves bare LF inside body parts (SMTP's DATA stream fixes them on the
  // wire); a file must carry CRLF throughout, as RFC 5322 requires. The body is 7-bit encoded
  // (quoted-printable / base64), so a byte-wise replace is safe.
  const crlf = (message: Buffer) =>
    Buffer.from(message.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
  const folder = resolve(dir);
  return {
    kind: 'outbox',
    async send(message, name) {
      const info = await builder.sendMail(message);
      await mkdir(folder, { recursive: true });
      const file = join(folder, `${name.replace(/[^\w.-]/g, '_')}.eml`);
      const temp = `${file}.${randomUUID()}.tmp`;
      try {
        await writeFile(temp, crlf(info.message as Buffer));
        await rename(temp, file);
      } catch (error) {
        await unlink(temp).catch(() => {});
        throw error;
      }
      const recipients = [...(info.envelope.to ?? [])];
      return { transport: 'outbox', messageId: info.messageId, accepted: recipients, rejected: [], file };
    },
    async close() {
      builder.close();
    },
  };
}

function addresses(list: (string | Mail.Address)[] | undefined): string[] {
  return (list ?? []).map((a) => (typeof a === 'string' ? a : a.address));
}
