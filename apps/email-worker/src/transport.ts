import { randomUUID } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import nodemailer from 'nodemailer';
import type Mail from 'nodemailer/lib/mailer';

/** What sending one message reports; stored as the job's result. */
export interface SendResult {
  transport: 'smtp' | 'outbox';
  messageId: string;
  /** The SMTP envelope: MAIL FROM and RCPT TO (the outbox reports what it would send). */
  envelope: { from: string | false; to: string[] };
  accepted: string[];
  rejected: string[];
  /** The SMTP server's final reply, e.g. "250 2.0.0 Ok: queued as 1234". */
  response?: string;
  /** The .eml file written by the outbox. */
  file?: string;
}

export interface MailTransport {
  readonly kind: 'smtp' | 'outbox';
  /**
   * `name` is the outbox file's name (the job id); SMTP ignores it. When `signal` aborts (the
   * job was cancelled), the send stops and rejects with the signal's reason: SMTP closes the
   * connection carrying the message (before the final "." nothing is sent).
   */
  send(message: Mail.Options, name: string, signal?: AbortSignal): Promise<SendResult>;
  close(): Promise<void>;
}

/**
 * A pooled SMTP transport: up to poolSize connections stay open across jobs, so each message
 * costs one SMTP transaction instead of a connect + EHLO + STARTTLS + AUTH. Errors keep
 * nodemailer's `responseCode` / `response` / `code` for classifySmtpError.
 */
export function createSmtpTransport(url: string, poolSize: number): MailTransport {
  const transporter = nodemailer.createTransport(
    withOptions(url, {
      pool: true,
      maxConnections: poolSize,
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 60_000,
    }),
  );
  return {
    kind: 'smtp',
    async send(message, _name, signal) {
      signal?.throwIfAborted();
      const sending = transporter.sendMail(message);
      const onAbort = () => abortPooledSend(transporter, message.messageId);
      signal?.addEventListener('abort', onAbort, { once: true });
      let info: Awaited<typeof sending>;
      try {
        info = await sending;
      } catch (error) {
        throw signal?.aborted ? signal.reason : error;
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      return {
        transport: 'smtp',
        messageId: info.messageId,
        envelope: { from: info.envelope.from, to: [...(info.envelope.to ?? [])] },
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
 *
 * The file calls are synchronous, on purpose: a 400-byte write and a rename took 110–200 µs of
 * the event loop here, where the same calls through libuv's thread pool (fs/promises) cost
 * 330–570 µs of CPU per file, most of it the kernel's, waking pool threads across cores (bench:
 * docs/benchmarks.md, "an outbox without the thread pool"). A worker's other jobs wait that long, far
 * below any lease or heartbeat.
 */
export function createOutboxTransport(dir: string): MailTransport {
  const builder = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  // nodemailer's composer leaves bare LF inside body parts (SMTP's DATA stream fixes them on the
  // wire); a file must carry CRLF throughout, as RFC 5322 requires. The body is 7-bit encoded
  // (quoted-printable / base64), so a byte-wise replace is safe.
  const crlf = (message: Buffer) =>
    Buffer.from(message.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
  const folder = resolve(dir);
  // Made once, not per message (a syscall per email); made again if it is removed meanwhile.
  let folderMade = false;
  const write = (file: string, temp: string, content: Buffer) => {
    try {
      if (!folderMade) mkdirSync(folder, { recursive: true });
      folderMade = true;
      writeFileSync(temp, content);
    } catch (error) {
      folderMade = false;
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      mkdirSync(folder, { recursive: true });
      writeFileSync(temp, content);
    }
    renameSync(temp, file);
  };
  return {
    kind: 'outbox',
    async send(message, name) {
      const info = await builder.sendMail(message);
      const file = join(folder, `${name.replace(/[^\w.-]/g, '_')}.eml`);
      const temp = `${file}.${randomUUID()}.tmp`;
      try {
        write(file, temp, crlf(info.message as Buffer));
      } catch (error) {
        rmSync(temp, { force: true });
        throw error;
      }
      const recipients = [...(info.envelope.to ?? [])];
      const envelope = { from: info.envelope.from, to: recipients };
      return {
        transport: 'outbox',
        messageId: info.messageId,
        envelope,
        accepted: recipients,
        rejected: [],
        file,
      };
    },
    async close() {
      builder.close();
    },
  };
}

/**
 * The SMTP_URL with these options added to its query where it does not set them: given a `url`,
 * nodemailer takes every option from the URL and ignores those beside it (so `pool` there made
 * no pool). The URL's own query (e.g. ?socketTimeout=) still wins.
 */
function withOptions(url: string, options: Record<string, string | number | boolean>): string {
  const parsed = new URL(url);
  for (const [name, value] of Object.entries(options))
    if (!parsed.searchParams.has(name)) parsed.searchParams.set(name, String(value));
  return parsed.toString();
}

/** What of nodemailer's SMTP pool abortPooledSend reaches into (smtp-pool/index.js, pool-resource.js). */
interface PoolInternals {
  _connections?: {
    queueEntry?: false | { messageId?: string; callback(error: Error): void };
    close(): void;
  }[];
  _queue?: { mail: { message: { getHeader(name: string): string } }; callback(error: Error): void }[];
}

/**
 * nodemailer has no per-message abort, and closing the transport would close every pooled
 * connection, failing other jobs' sends. So: the pool connection that carries this Message-ID is
 * closed (its send fails at once, and the pool opens another for later messages), or the message
 * still waiting for a connection is taken off the pool's queue. Before the final "." the server
 * commits nothing; after it, the server may already have the message. Reaches into the pool's
 * internals, checked by a test against a real server (test/email.test.ts).
 */
function abortPooledSend(transporter: nodemailer.Transporter, messageId: string | undefined): void {
  if (!messageId) return;
  const id = messageId.replace(/[<>\s]/g, '');
  const pool = (transporter as unknown as { transporter?: PoolInternals }).transporter;
  const connection = pool?._connections?.find((c) => c.queueEntry && c.queueEntry.messageId === id);
  if (connection?.queueEntry) {
    // Taken off first: the pool sends again a message whose connection closed under it.
    const entry = connection.queueEntry;
    connection.queueEntry = false;
    connection.close();
    entry.callback(new Error('send aborted'));
    return;
  }
  const queue = pool?._queue;
  const index =
    queue?.findIndex((e) => (e.mail.message.getHeader('message-id') ?? '').replace(/[<>\s]/g, '') === id) ??
    -1;
  if (queue && index >= 0) queue.splice(index, 1)[0]!.callback(new Error('send aborted'));
}

function addresses(list: (string | Mail.Address)[] | undefined): string[] {
  return (list ?? []).map((a) => (typeof a === 'string' ? a : a.address));
}
