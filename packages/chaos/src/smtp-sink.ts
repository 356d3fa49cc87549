/**
 * The chaos run's SMTP server: a real one (the smtp-server package) on a loopback port that
 * logs every DATA it accepts, with the message's Message-ID and job id, to memory and to a
 * JSON-lines file. Side effects are counted here, where they land: the outbox names files by
 * job id and so hides a resend; an SMTP server sees every copy.
 *
 * `delayMs` makes every message take that long, like a slow relay, so jobs are inside the
 * worker's handler when a kill lands: half of it before RCPT TO is answered (a kill there means
 * nothing was sent), half after the final "." before the message is committed and answered 250.
 * A message whose client went away during that second half is still committed (an MTA that has
 * the final "." has the mail): that is the copy a crashed worker never learns was sent.
 */
import { appendFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface SinkDelivery {
  /** ms since the run's clock started. */
  at: number;
  jobId: string;
  messageId: string;
  /** The SMTP client's connection closed before the sink committed this message. */
  clientGone: boolean;
  /** ms when this message's RCPT TO arrived: tells a re-run's copy from one begun before a fault. */
  rcptAt?: number;
}

/**
 * One SMTP transaction the sink has seen RCPT TO for and not yet answered the final "." of:
 * a job inside its send. `stage` "rcpt": nothing of the message was received (a kill here
 * means nothing was sent); "data": the whole message was received and will be committed even
 * if the client goes away.
 */
export interface SinkTransaction {
  sessionId: string;
  /** The RCPT TO address (the chaos client sends job i to user<i>@...). */
  rcpt: string;
  rcptAt: number;
  stage: 'rcpt' | 'data';
  /** ms when the client's connection closed with this transaction still open (a killed sender). */
  abortedAt?: number;
}

export interface SmtpSink {
  url: string;
  deliveries: SinkDelivery[];
  /** DATA commands received and not yet committed (inside the delay). */
  inProgress(): number;
  /** Transactions open now (RCPT TO seen, final "." not yet answered), copies. */
  openTransactions(): SinkTransaction[];
  /** Transactions whose client connection closed before the sink answered them, in order. */
  aborted: SinkTransaction[];
  /** Resolves when fn() is true after a delivery, or after timeoutMs (with false). */
  waitUntil(fn: () => boolean, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface SmtpSinkOptions {
  delayMs: number;
  /** ms on the run's clock. */
  now: () => number;
  /** Every delivery is appended here as one JSON line. */
  logFile?: string;
}

export async function startSmtpSink(options: SmtpSinkOptions): Promise<SmtpSink> {
  const deliveries: SinkDelivery[] = [];
  const closedSessions = new Set<string>();
  const open = new Map<string, SinkTransaction>();
  const aborted: SinkTransaction[] = [];
  let pending = 0;
  let waiters: { check: () => boolean; resolve: (ok: boolean) => void }[] = [];

  function notify(): void {
    waiters = waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve(true);
      return false;
    });
  }

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    // A worker that was SIGKILLed leaves half-open sessions; do not keep them around for long.
    socketTimeout: 30_000,
    closeTimeout: 1_000,
    onMailFrom(_address, session, callback) {
      open.delete(session.id);
      callback();
    },
    onRcptTo(address, session, callback) {
      open.set(session.id, {
        sessionId: session.id,
        rcpt: address.address,
        rcptAt: options.now(),
        stage: 'rcpt',
      });
      setTimeout(() => callback(), Math.floor(options.delayMs / 2));
    },
    onClose(session) {
      closedSessions.add(session.id);
      const transaction = open.get(session.id);
      if (transaction) {
        open.delete(session.id);
        aborted.push({ ...transaction, abortedAt: options.now() });
      }
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      pending++;
      const transaction = open.get(session.id);
      if (transaction) transaction.stage = 'data';
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        setTimeout(
          () => {
            pending--;
            const headers = parseHeaders(Buffer.concat(chunks).toString('utf8'));
            const delivery: SinkDelivery = {
              at: options.now(),
              jobId: headers['x-polyqueue-job-id'] ?? '',
              messageId: headers['message-id'] ?? '',
              clientGone: closedSessions.has(session.id),
              ...(transaction ? { rcptAt: transaction.rcptAt } : {}),
            };
            if (open.get(session.id) === transaction) open.delete(session.id);
            deliveries.push(delivery);
            if (options.logFile) appendFileSync(options.logFile, `${JSON.stringify(delivery)}\n`);
            notify();
            callback();
          },
          Math.ceil(options.delayMs / 2),
        );
      });
    },
  });
  server.on('error', () => {
    // A client killed mid-session resets its socket; that is the point of the run, not an error.
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = (server as unknown as { server: { address(): AddressInfo } }).server.address();
  return {
    url: `smtp://127.0.0.1:${port}`,
    deliveries,
    inProgress: () => pending,
    openTransactions: () => [...open.values()].map((t) => ({ ...t })),
    aborted,
    waitUntil(check, timeoutMs) {
      if (check()) return Promise.resolve(true);
      return new Promise((resolve) => {
        const waiter = { check, resolve };
        waiters.push(waiter);
        setTimeout(() => {
          waiters = waiters.filter((w) => w !== waiter);
          resolve(check());
        }, timeoutMs).unref();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(resolve, 3_000);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/** Header name (lower case) -> unfolded value, from a raw RFC 5322 message. */
export function parseHeaders(raw: string): Record<string, string> {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}
