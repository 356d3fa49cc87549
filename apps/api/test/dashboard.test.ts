/**
 * The dashboard's HTTP side without a browser: its pages and files, the sign-in that turns the
 * token into a session cookie, that cookie on the admin routes, and GET /v1/broker. The browser
 * run over a real broker is dashboard.browser.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import { MemoryQueueControls } from '@polyqueue/core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { RecordingBroker } from './helpers';

const TOKEN = 'dash-s3cret';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'polyqueue-dashboard-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function app(apiToken?: string, controls = new MemoryQueueControls()) {
  return createServer({
    broker: new RecordingBroker(),
    state: new MemoryStateStore(),
    controls,
    storageRoot: dir,
    ...(apiToken ? { apiToken } : {}),
  });
}

/** The cookie pair (name=value) a response sets, if any. */
const cookieOf = (res: request.Response) =>
  ([] as string[]).concat(res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!)[0];

describe('dashboard with API_TOKEN set', () => {
  it('sends an unsigned visitor to sign in, and serves its scripts and styles', async () => {
    const server = app(TOKEN);
    const page = await request(server).get('/dashboard');
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/dashboard/sign-in');
    const signIn = await request(server).get('/dashboard/sign-in');
    expect(signIn.status).toBe(200);
    expect(signIn.text).toContain('action="/dashboard/session"');
    expect(signIn.text).toContain('data-error hidden');
    for (const file of ['app.js', 'ui.js', 'dead-letters.js', 'i18n.js', 'style.css']) {
      const res = await request(server).get(`/dashboard/${file}`);
      expect(res.status, file).toBe(200);
    }
    expect((await request(server).get('/dashboard/app.js')).headers['content-type']).toMatch(/javascript/);
  });

  it('answers a wrong token with 401 and the error shown, and sets no cookie', async () => {
    const server = app(TOKEN);
    const res = await request(server).post('/dashboard/session').type('form').send({ token: 'nope' });
    expect(res.status).toBe(401);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.text).not.toContain('data-error hidden');
    expect(res.text).toContain('id="sign-in-error"');
  });

  it('keeps the right token as an HttpOnly, SameSite=Strict cookie the admin routes accept', async () => {
    const controls = new MemoryQueueControls();
    const server = app(TOKEN, controls);
    const res = await request(server).post('/dashboard/session').type('form').send({ token: TOKEN });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/dashboard/');
    const setCookie = String(res.headers['set-cookie']);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).not.toContain(TOKEN);
    const cookie = cookieOf(res)!;

    const page = await request(server).get('/dashboard').set('Cookie', cookie);
    expect(page.status).toBe(200);
    expect(page.text).toContain('/dashboard/app.js');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect((await request(server).get('/v1/queues').set('Cookie', cookie)).status).toBe(200);
    expect((await request(server).post('/v1/queues/email/pause').set('Cookie', cookie)).status).toBe(200);
    expect(await controls.paused()).toEqual(new Set(['email']));

    // A forged cookie, or a wrong Bearer beside the good cookie: 401, nothing changed.
    const forged = await request(server).post('/v1/queues/email/resume').set('Cookie', 'polyqueue_session=x');
    expect(forged.status).toBe(401);
    const wrongBearer = await request(server)
      .post('/v1/queues/email/resume')
      .set('Cookie', cookie)
      .set('Authorization', 'Bearer nope');
    expect(wrongBearer.status).toBe(401);
    expect(await controls.paused()).toEqual(new Set(['email']));

    const out = await request(server).post('/dashboard/sign-out').set('Cookie', cookie);
    expect(out.status).toBe(303);
    expect(String(out.headers['set-cookie'])).toMatch(/polyqueue_session=;/);
  });

  it('answers GET /v1/broker with the name and capabilities, behind the token', async () => {
    const server = app(TOKEN);
    expect((await request(server).get('/v1/broker')).status).toBe(401);
    const res = await request(server).get('/v1/broker').set('Authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ name: 'recording', capabilities: new RecordingBroker().capabilities });
  });
});

describe('dashboard without API_TOKEN', () => {
  it('is open, as the API is', async () => {
    const server = app();
    const page = await request(server).get('/dashboard');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<main id="main"');
    expect((await request(server).get('/dashboard/sign-in')).headers.location).toBe('/dashboard/');
    expect((await request(server).get('/v1/broker')).body.name).toBe('recording');
  });
});
