import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createEnvelope,
  JobCancelledError,
  type JobContext,
  NonRetryableError,
  RetryableError,
  silentLogger,
} from '@polyqueue/core';
import { eventually } from '@polyqueue/testkit';
import { parseHeaders, type SmtpSink, startSmtpSink } from '@polyqueue/testkit/smtp-sink';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadEmailWorkerConfig } from '../src/config';
import { classifySmtpError, createEmailHandler } from '../src/handler';
import { messageIdFor } from '../src/message';
import { createOutboxTransport, createSmtpTransport, type MailTransport } from '../src/transport';

const options = { from: 'polyqueue <no-reply@example.test>', messageIdDomain: 'example.test' };

function context(id: string, signal = new AbortController().signal): JobContext {
  return {
    envelope: createEnvelope('send_email', {}, { id }),
    attempt: 1,
    signal,
    extend: async () => {},
    progress: async () => {},
    logger: silentLogger(),
  };
}

describe('SMTP transport (pooled) against a real SMTP server', () => {
  let sink: SmtpSink;
  let transport: MailTransport;
  beforeAll(async () => {
    sink = await startSmtpSink();
    transport = createSmtpTransport(sink.url, 2);
  });
  afterEach(() => sink.rejectRecipients(undefined));
  afterAll(async () => {
    await transport.close();
    await sink.close();
  });

  it('delivers the message with a Message-ID derived from the job id', async () => {
    const handler = createEmailHandler(transport, options);
    const result = await handler.handle(
      { to: 'ada@example.com', subject: 'Hello Ada', body: 'Plain body line' },
      context('job-123'),
    );
    // The result keeps the message's headers and the SMTP envelope (the dashboard's job page).
    expect(result).toMatchObject({
      transport: 'smtp',
      messageId: '<job-123@example.test>',
      from: 'polyqueue <no-reply@example.test>',
      to: ['ada@example.com'],
      subject: 'Hello Ada',
      envelope: { from: 'no-reply@example.test', to: ['ada@example.com'] },
      accepted: ['ada@example.com'],
      rejected: [],
    });
    const [mail] = await sink.waitFor(1);
    expect(mail!.to).toEqual(['ada@example.com']);
    expect(mail!.headers).toMatchObject({
      'message-id': '<job-123@example.test>',
      subject: 'Hello Ada',
      to: 'ada@example.com',
      from: 'polyqueue <no-reply@example.test>',
      'x-polyqueue-job-id': 'job-123',
    });
    expect(mail!.raw).toContain('Plain body line');
  });

  it('turns a 4xx reply into a retry and a 5xx reply into a dead letter with the reply', async () => {
    const handler = createEmailHandler(transport, options);
    const payload = { to: 'bob@example.com', subject: 'Hi', body: 'x' };
    sink.rejectRecipients({ code: 451, message: 'greylisted, try again later' });
    const temporary = await handler.handle(payload, context('job-451')).catch((e: unknown) => e);
    expect(temporary).toBeInstanceOf(RetryableError);
    expect((temporary as RetryableError).message).toMatch(/^SMTP 451 \(temporary\): .*greylisted/);
    expect((temporary as RetryableError).retryAfterMs).toBe(60_000);
    sink.rejectRecipients({ code: 550, message: 'no such mailbox here' });
    const permanent = await handler.handle(payload, context('job-550')).catch((e: unknown) => e);
    expect(permanent).toBeInstanceOf(NonRetryableError);
    expect((permanent as Error).message).toMatch(/^SMTP 550 \(permanent\): .*no such mailbox here/);
  });
});

describe('SMTP transport: a cancelled job', () => {
  it('closes the connection carrying its message, sends nothing, and the pool sends the next one', async () => {
    // Each message waits 1 s before RCPT TO is answered: the job is inside its send when cancelled.
    const sink = await startSmtpSink({ delayMs: 2_000 });
    const transport = createSmtpTransport(sink.url, 2);
    try {
      const handler = createEmailHandler(transport, options);
      const cancel = new AbortController();
      const payload = { to: 'ada@example.com', subject: 'Hi', body: 'x' };
      const sending = handler.handle(payload, context('job-c1', cancel.signal)).catch((e: unknown) => e);
      await eventually(
        async () => sink.openTransactions().length,
        (n) => n === 1,
        'the send to reach RCPT TO',
      );
      cancel.abort(new JobCancelledError('job-c1'));
      expect(await sending).toBeInstanceOf(JobCancelledError);
      await eventually(
        async () => sink.aborted.length,
        (n) => n === 1,
        'the sink to see its client go away',
      );
      expect(sink.aborted[0]).toMatchObject({ rcpt: 'ada@example.com', stage: 'rcpt' });

      const next = await handler.handle(payload, context('job-c2'));
      expect(next).toMatchObject({ messageId: '<job-c2@example.test>' });
      expect(sink.received.map((m) => m.headers['message-id'])).toEqual(['<job-c2@example.test>']);
    } finally {
      await transport.close();
      await sink.close();
    }
  });
});

describe('file outbox', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'polyqueue-outbox-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('writes a real RFC 5322 message per job, named by the job id, once however often the job runs', async () => {
    const transport = createOutboxTransport(dir);
    const handler = createEmailHandler(transport, options);
    const payload = {
      to: ['ada@example.com', 'bob@example.com'],
      subject: 'Welcome',
      template: 'welcome',
      vars: { name: 'Ada <3' },
    };
    const first = await handler.handle(payload, context('job-w1'));
    await handler.handle(payload, context('job-w1'));
    expect(await readdir(dir)).toEqual(['job-w1.eml']);
    expect(first).toMatchObject({
      transport: 'outbox',
      file: join(dir, 'job-w1.eml'),
      subject: 'Welcome',
      to: ['ada@example.com', 'bob@example.com'],
      envelope: { from: 'no-reply@example.test', to: ['ada@example.com', 'bob@example.com'] },
      accepted: ['ada@example.com', 'bob@example.com'],
    });
    const raw = await readFile(join(dir, 'job-w1.eml'), 'utf8');
    expect(raw).toMatch(/\r\n\r\n/);
    expect(raw.replace(/\r\n/g, '')).not.toMatch(/\n/);
    const headers = parseHeaders(raw);
    expect(headers).toMatchObject({
      'message-id': '<job-w1@example.test>',
      subject: 'Welcome',
      to: 'ada@example.com, bob@example.com',
      'mime-version': '1.0',
    });
    expect(headers['content-type']).toMatch(/^multipart\/alternative/);
    expect(headers.date).toBeTruthy();
    expect(raw).toContain('Hi Ada <3,');
    expect(raw).toContain('Hi Ada &#60;3,');
    await transport.close();
  });

  it('makes its folder again when it is removed while the worker runs', async () => {
    const folder = join(dir, 'removed');
    const handler = createEmailHandler(createOutboxTransport(folder), options);
    const payload = { to: 'a@example.com', subject: 'Again', body: 'Hello' };
    await handler.handle(payload, context('job-r1'));
    await rm(folder, { recursive: true });
    await handler.handle(payload, context('job-r2'));
    expect(await readdir(folder)).toEqual(['job-r2.eml']);
  });

  it('dead-letters an unknown template', async () => {
    const handler = createEmailHandler(createOutboxTransport(dir), options);
    const error = await handler
      .handle({ to: 'a@example.com', subject: 's', template: 'nope' }, context('job-t'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonRetryableError);
    expect((error as Error).message).toMatch(/unknown email template "nope"; known: welcome/);
  });
});

describe('helpers', () => {
  it('classifies connection errors as retryable as they are', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNECTION' });
    expect(classifySmtpError(refused)).toBe(refused);
    expect(
      classifySmtpError(Object.assign(new Error('x'), { responseCode: 552, response: '552 too big' })),
    ).toBeInstanceOf(NonRetryableError);
  });

  it('makes a valid Message-ID from any job id', () => {
    expect(messageIdFor('1700000000-0', 'd.test')).toBe('<1700000000-0@d.test>');
    expect(messageIdFor('a b<c>', 'd.test')).toBe('<a_b_c_@d.test>');
  });

  it('refuses a malformed SMTP_URL naming the variable', () => {
    expect(() => loadEmailWorkerConfig({ SMTP_URL: 'localhost:25' })).toThrow(
      /SMTP_URL: must be a URL starting with smtp:\/\//,
    );
    expect(loadEmailWorkerConfig({ SMTP_URL: '' }).SMTP_URL).toBeUndefined();
  });
});
