/**
 * End to end: the API and both workers as three real processes on the embedded sqlite broker
 * and state store, the email worker sending to a real SMTP server run here (smtp-server).
 * The processes run the compiled bundles (apps/<app>/dist/main.js, built first when stale) with
 * plain node, as `npm start` and the images do, so the bundling is under test too.
 * Nothing sleeps to wait for a message: the test awaits the SMTP sink's onData, the services'
 * own "ready" log lines, and polls GET /v1/jobs/:id (an HTTP status) in a bounded loop.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type SmtpSink, startSmtpSink } from '@polyqueue/testkit/smtp-sink';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeJpeg, makePngBomb } from '../../image-worker/test/images';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');

interface Service {
  name: string;
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

let dir: string;
let sink: SmtpSink;
let services: Service[] = [];
let api: string;

function startService(
  name: string,
  entry: string,
  env: Record<string, string>,
  readyMessage: RegExp,
): Promise<Service> {
  const child = spawn(process.execPath, [join(repoRoot, entry)], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const service = { name, child, lines, exited };
  services.push(service);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} not ready after 60 s:\n${lines.join('\n')}`)),
      60_000,
    );
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        if (readyMessage.test(line)) {
          clearTimeout(timer);
          resolve(service);
        }
      });
    }
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it was ready:\n${lines.join('\n')}`));
    });
  });
}

beforeAll(async () => {
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale', 'api', 'email-worker', 'image-worker'], {
    cwd: repoRoot,
  });
  dir = await mkdtemp(join(tmpdir(), 'polyqueue-e2e-'));
  sink = await startSmtpSink();
  const env = {
    BROKER: 'sqlite',
    SQLITE_PATH: join(dir, 'queue.db'),
    SQLITE_POLL_MAX_MS: '50',
    STATE_URL: `sqlite:${join(dir, 'state.db')}`,
    STORAGE_ROOT: join(dir, 'storage'),
    SMTP_URL: sink.url,
    MAIL_FROM: 'polyqueue <no-reply@e2e.test>',
    BACKOFF_BASE_MS: '100',
    LOG_LEVEL: 'info',
    PORT: '0',
  };
  const [apiService] = await Promise.all([
    startService('api', 'apps/api/dist/main.js', env, /"msg":"listening on /),
    startService('email-worker', 'apps/email-worker/dist/main.js', env, /"msg":"worker ready"/),
    startService('image-worker', 'apps/image-worker/dist/main.js', env, /"msg":"worker ready"/),
  ]);
  const port = /"port":(\d+)/.exec(apiService.lines.find((l) => l.includes('listening on'))!)![1];
  api = `http://127.0.0.1:${port}`;
}, 90_000);

afterAll(async () => {
  for (const s of services) s.child.kill('SIGTERM');
  const codes = await Promise.all(services.map((s) => s.exited));
  services = [];
  await sink?.close();
  await rm(dir, { recursive: true, force: true });
  // A clean shutdown: every process drained and exited 0.
  expect(codes).toEqual([0, 0, 0]);
}, 60_000);

async function post(path: string, body: string | Buffer | FormData, headers: Record<string, string>) {
  const res = await fetch(`${api}${path}`, { method: 'POST', body, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

const postJson = (path: string, value: unknown, headers: Record<string, string> = {}) =>
  post(path, typeof value === 'string' ? value : JSON.stringify(value), {
    'content-type': 'application/json',
    ...headers,
  });

/** Polls GET /v1/jobs/:id until the job reaches a final status (bounded; an HTTP status, not a message). */
async function settledJob(
  id: string,
  timeoutMs = 30_000,
): Promise<Record<string, unknown> & { status: string }> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await fetch(`${api}/v1/jobs/${id}`);
    last = await res.json();
    if (['succeeded', 'dead'].includes((last as { status: string }).status)) return last as never;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${id} did not settle in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

function expectProblem(
  res: { status: number; headers: Headers; body: { detail?: string } },
  status: number,
  detail: RegExp,
) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body.detail).toMatch(detail);
}

describe('three processes on sqlite', () => {
  let emailJob: string;

  it('delivers an email once to a real SMTP server, even when posted twice with one Idempotency-Key', async () => {
    const email = {
      to: 'ada@example.com',
      subject: 'Welcome aboard',
      template: 'welcome',
      vars: { name: 'Ada' },
    };
    const first = await postJson('/v1/emails', email, { 'idempotency-key': 'signup-ada' });
    const second = await postJson('/v1/emails', email, { 'idempotency-key': 'signup-ada' });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(first.headers.get('location')).toBe(`/v1/jobs/${first.body.id}`);
    emailJob = first.body.id;

    const [mail] = await sink.waitFor(1);
    expect(mail!.to).toEqual(['ada@example.com']);
    expect(mail!.headers).toMatchObject({
      'message-id': `<${emailJob}@e2e.test>`,
      subject: 'Welcome aboard',
      to: 'ada@example.com',
      from: 'polyqueue <no-reply@e2e.test>',
    });
    expect(mail!.raw).toContain('Hi Ada,');
    expect(mail!.raw).toContain('Welcome to polyqueue!');

    const job = await settledJob(emailJob);
    expect(job).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      result: { transport: 'smtp', accepted: ['ada@example.com'] },
    });
  });

  it('makes the image variants with the right dimensions and serves them', async () => {
    const form = new FormData();
    form.append('file', new Blob([await makeJpeg(1600, 1200)], { type: 'image/jpeg' }), 'photo.jpg');
    const res = await post('/v1/images', form, {});
    expect(res.status).toBe(202);
    const job = await settledJob(res.body.id);
    expect(job.status).toBe('succeeded');
    // The worker reported each variant; the record keeps the last report.
    expect(job.progress).toMatchObject({ percent: 100, message: 'done 2 of 2 variants' });
    const variants = (
      job.result as { variants: { name: string; width: number; height: number; url: string }[] }
    ).variants;
    expect(variants.map((v) => [v.name, v.width, v.height])).toEqual([
      ['thumbnail', 256, 256],
      ['medium', 1024, 768],
    ]);
    for (const variant of variants) {
      const file = await fetch(`${api}${variant.url}`);
      expect(file.headers.get('content-type')).toBe('image/webp');
      const meta = await sharp(Buffer.from(await file.arrayBuffer())).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['webp', variant.width, variant.height]);
    }
  });

  it('answers bad requests with clear 4xx problems', async () => {
    expectProblem(await postJson('/v1/emails', '{"to": "ada@'), 400, /not valid JSON/);
    const missing = await postJson('/v1/emails', { body: 'hi' });
    expectProblem(missing, 422, /to: .*subject: /s);
    const wrongType = await postJson('/v1/emails', { to: ['ada@example.com'], subject: 42, body: 'hi' });
    expectProblem(wrongType, 422, /subject: /);
    expect(wrongType.body.errors[0].field).toBe('subject');
    const thirtyMiB = Buffer.alloc(30 * 1024 * 1024, 1);
    expectProblem(
      await post('/v1/images', thirtyMiB, { 'content-type': 'image/png' }),
      413,
      /larger than the limit of 20971520 bytes/,
    );
    expectProblem(
      await postJson('/v1/emails', { to: 'a@example.com', subject: 's', body: 'x'.repeat(30 * 1024 * 1024) }),
      413,
      /JSON body/,
    );
    expectProblem(
      await post('/v1/images', 'hello, I am text', { 'content-type': 'image/png' }),
      415,
      /not a recognised image/,
    );
    expectProblem(
      await postJson('/v1/jobs', { type: 'process_image', payload: { path: '../../etc/passwd' } }),
      422,
      /payload\.path/,
    );
    expectProblem(
      await postJson('/v1/jobs', { type: 'transcode_video', payload: {} }),
      422,
      /unknown job type "transcode_video"/,
    );
  });

  it('dead-letters a 20000x20000 PNG bomb with its reason, before decoding it', async () => {
    const res = await post('/v1/images', makePngBomb(), { 'content-type': 'image/png' });
    expect(res.status).toBe(202);
    const job = await settledJob(res.body.id);
    expect(job.status).toBe('dead');
    expect(job.lastError).toMatch(/20000x20000 = 400000000 pixels, over IMAGE_LIMIT_INPUT_PIXELS/);
  });

  it('kept every service up, and the email arrived exactly once', async () => {
    expect((await fetch(`${api}/readyz`)).status).toBe(200);
    for (const s of services) expect(s.child.exitCode, `${s.name} exited`).toBeNull();
    // One more job through the whole system proves the email worker is still consuming.
    const again = await postJson('/v1/emails', {
      to: 'bob@example.com',
      subject: 'Still here',
      body: 'ping',
    });
    expect((await settledJob(again.body.id)).status).toBe('succeeded');
    await sink.waitFor(2);
    const ids = sink.received.map((m) => m.headers['message-id']);
    expect(ids.filter((id) => id === `<${emailJob}@e2e.test>`)).toHaveLength(1);
    expect(ids).toHaveLength(2);
  });
});
