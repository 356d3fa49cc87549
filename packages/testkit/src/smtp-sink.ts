/**
 * A real SMTP server (the smtp-server package) on a random loopback port that keeps what it
 * receives: for the email worker's tests, the API's end-to-end test and the chaos run. No TLS
 * and no AUTH: the client sends in clear over loopback. Imported as
 * `@polyqueue/testkit/smtp-sink`, so a caller outside vitest (the chaos run) loads no test code.
 *
 * `delayMs` makes every message take that long, like a slow relay, so jobs are inside the
 * worker's handler when a kill lands: half of it before RCPT TO is answered (a kill there means
 * nothing was sent), half after the final "." before the message is committed and answered 250.
 * A message whose client went away during that second half is still committed (an MTA that has
 * the final "." has the mail): that is the copy a crashed worker never learns was sent.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One message as the sink committed it. */
export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  /** Header name (lower case) -> unfolded value, from the raw message. */
  headers: Record<string, string>;
  /** now() when the sink committed it. */
  at: number;
  /** The SMTP client's connection closed before the sink committed this message. */
  clientGone: boolean;
  /** now() when its RCPT TO arrived: tells a re-run's copy from one begun before a fault. */
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
  /** The RCPT TO address. */
  rcpt: string;
  rcptAt: number;
  stage: 'rcpt' | 'data';
  /** now() when the client's connection closed with this transaction still open (a killed sender). */
  abortedAt?: number;
}

export interface SmtpSinkOptions {
  /** How long each message takes to be accepted (ms); default 0. */
  delayMs?: number;
  /** The clock of `at`, `rcptAt`, `abortedAt`; default Date.now. */
  now?: () => number;
  /** Told of each message as it is committed, before any waiter. */
  onMail?: (mail: ReceivedMail) => void;
}

export interface SmtpSink {
  url: string;
  port: number;
  received: ReceivedMail[];
  /** DATA commands received and not yet committed (inside the delay). */
  inProgress(): number;
  /** Transactions open now (RCPT TO seen, final "." not yet answered), copies. */
  openTransactions(): SinkTransaction[];
  /** Transactions whose client connection closed before the sink answered them, in order. */
  aborted: SinkTransaction[];
  /** Resolves when check() is true after a message, or after timeoutMs (with false). */
  waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean>;
  /** Resolves when `count` messages in all have arrived; rejects after timeoutMs. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  /** Make RCPT TO answer with this code and text (e.g. 451 / 550) until cleared. */
  rejectRecipients(reply: { code: number; message: string } | undefined): void;
  close(): Promise<void>;
}

export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const delayMs = options.delayMs ?? 0;
  const now = options.now ?? Date.now;
  const received: ReceivedMail[] = [];
  const closedSessions = new Set<string>();
  const open = new Map<string, SinkTransaction>();
  const aborted: SinkTransaction[] = [];
  let pending = 0;
  let rejection: { code: number; message: string } | undefined;
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
      if (rejection) {
        const error = new Error(rejection.message) as Error & { responseCode: number };
        error.responseCode = rejection.code;
        return callback(error);
      }
      open.set(session.id, { sessionId: session.id, rcpt: address.address, rcptAt: now(), stage: 'rcpt' });
      setTimeout(() => callback(), Math.floor(delayMs / 2));
    },
    onClose(session) {
      closedSessions.add(session.id);
      const transaction = open.get(session.id);
      if (transaction) {
        open.delete(session.id);
        aborted.push({ ...transaction, abortedAt: now() });
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
            const raw = Buffer.concat(chunks).toString('utf8');
            const mail: ReceivedMail = {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
              raw,
              headers: parseHeaders(raw),
              at: now(),
              clientGone: closedSessions.has(session.id),
              ...(transaction ? { rcptAt: transaction.rcptAt } : {}),
            };
            if (open.get(session.id) === transaction) open.delete(session.id);
            received.push(mail);
            options.onMail?.(mail);
            notify();
            callback();
          },
          Math.ceil(delayMs / 2),
        );
      });
    },
  });
  server.on('error', () => {
    // A client killed mid-session resets its socket; that is what the chaos run does, not an error.
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = (server as unknown as { server: { address(): AddressInfo } }).server.address();
  const waitUntil = (check: () => boolean, timeoutMs: number): Promise<boolean> => {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== waiter);
        resolve(check());
      }, timeoutMs);
      timer.unref();
      const waiter = {
        check,
        resolve: (ok: boolean) => {
          clearTimeout(timer);
          resolve(ok);
        },
      };
      waiters.push(waiter);
    });
  };
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    received,
    inProgress: () => pending,
    openTransactions: () => [...open.values()].map((t) => ({ ...t })),
    aborted,
    waitUntil,
    async waitFor(count, timeoutMs = 20_000) {
      if (!(await waitUntil(() => received.length >= count, timeoutMs)))
        throw new Error(`SMTP sink: waited ${timeoutMs} ms for ${count} message(s), got ${received.length}`);
      return received;
    },
    rejectRecipients(reply) {
      rejection = reply;
    },
    close: () =>
      new Promise<void>((resolve) => {
        // A session a killed client left half-open must not hold the close for closeTimeout.
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
