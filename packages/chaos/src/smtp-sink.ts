/**
 * The chaos run's SMTP server: the testkit's sink (a real smtp-server on a loopback port, each
 * message delayed like a slow relay so kills land inside sends) that also logs every message
 * it commits, with its Message-ID and job id, to memory and to a JSON-lines file. Side effects
 * are counted here, where they land: the outbox names files by job id and so hides a resend; an
 * SMTP server sees every copy.
 */
import { appendFileSync } from 'node:fs';
import { type SmtpSink as BaseSink, startSmtpSink as startBaseSink } from '@polyqueue/testkit/smtp-sink';

export type { SinkTransaction } from '@polyqueue/testkit/smtp-sink';

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

export interface SmtpSink extends BaseSink {
  deliveries: SinkDelivery[];
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
  const sink = await startBaseSink({
    delayMs: options.delayMs,
    now: options.now,
    onMail: (mail) => {
      const delivery: SinkDelivery = {
        at: mail.at,
        jobId: mail.headers['x-polyqueue-job-id'] ?? '',
        messageId: mail.headers['message-id'] ?? '',
        clientGone: mail.clientGone,
        ...(mail.rcptAt !== undefined ? { rcptAt: mail.rcptAt } : {}),
      };
      deliveries.push(delivery);
      if (options.logFile) appendFileSync(options.logFile, `${JSON.stringify(delivery)}\n`);
    },
  });
  return Object.assign(sink, { deliveries });
}
