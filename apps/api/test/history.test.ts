/**
 * GET /v1/queues/:q/history from the state store's per-minute history, and from Prometheus when
 * PROMETHEUS_URL is set. Prometheus is an external system this project does not run in its
 * tests: a tiny HTTP server below speaks its query_range API (the JSON of
 * https://prometheus.io/docs/prometheus/latest/querying/api/#range-queries) and records the
 * queries it was asked.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import { MemoryMetricsHistory, MINUTE_MS } from '@polyqueue/core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { RecordingBroker } from './helpers';

// 12:03:30 UTC: the 24-hour window's last 5-minute bucket is 12:00-12:05.
const NOW = Date.parse('2026-11-30T12:03:30.000Z');

function app(deps: { history?: MemoryMetricsHistory; prometheusUrl?: string; apiToken?: string }) {
  return createServer({
    broker: new RecordingBroker(),
    state: new MemoryStateStore(),
    storageRoot: '/nonexistent',
    now: () => new Date(NOW),
    ...deps,
  });
}

describe('GET /v1/queues/:queue/history from the state store', () => {
  it('sums minutes into 5-minute buckets over 24 h, every bucket present, the greatest wait each', async () => {
    const history = new MemoryMetricsHistory();
    const at = (iso: string) => Date.parse(iso);
    await history.record([
      { queue: 'email', minute: at('2026-11-30T12:03:00Z'), completed: 3, failed: 1, oldestWaitMs: 1_200 },
      { queue: 'email', minute: at('2026-11-30T12:01:00Z'), completed: 2, failed: 0, oldestWaitMs: 4_000 },
      { queue: 'email', minute: at('2026-11-30T11:55:00Z'), completed: 0, failed: 5, oldestWaitMs: null },
      // Older than the window, and another queue: not shown.
      { queue: 'email', minute: at('2026-11-29T11:00:00Z'), completed: 9, failed: 9, oldestWaitMs: 9 },
      { queue: 'image', minute: at('2026-11-30T12:03:00Z'), completed: 7, failed: 0, oldestWaitMs: 7 },
    ]);
    const res = await request(app({ history })).get('/v1/queues/email/history');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.body;
    expect(body).toMatchObject({
      queue: 'email',
      source: 'state',
      hours: 24,
      stepSeconds: 300,
      from: '2026-11-29T12:05:00.000Z',
      to: '2026-11-30T12:05:00.000Z',
    });
    expect(body.points).toHaveLength(288);
    expect(body.points.at(-1)).toEqual({
      at: '2026-11-30T12:00:00.000Z',
      completed: 5,
      failed: 1,
      oldestWaitMs: 4_000,
    });
    expect(body.points.at(-2)).toEqual({
      at: '2026-11-30T11:55:00.000Z',
      completed: 0,
      failed: 5,
      oldestWaitMs: null,
    });
    const total = body.points.reduce((n: number, p: { completed: number }) => n + p.completed, 0);
    expect(total).toBe(5);
  });

  it('answers minute points for a few hours', async () => {
    const history = new MemoryMetricsHistory();
    await history.record([
      { queue: 'email', minute: NOW - (NOW % MINUTE_MS), completed: 1, failed: 0, oldestWaitMs: 10 },
    ]);
    const res = await request(app({ history })).get('/v1/queues/email/history?hours=1');
    expect(res.body).toMatchObject({ stepSeconds: 60, from: '2026-11-30T11:04:00.000Z' });
    expect(res.body.points).toHaveLength(60);
    expect(res.body.points.at(-1)).toEqual({
      at: '2026-11-30T12:03:00.000Z',
      completed: 1,
      failed: 0,
      oldestWaitMs: 10,
    });
  });

  it('refuses an unknown queue (404), bad hours (422), no token (401), and no store (501)', async () => {
    const history = new MemoryMetricsHistory();
    expect((await request(app({ history })).get('/v1/queues/nope/history')).status).toBe(404);
    for (const hours of ['0', '49', 'x', '1.5']) {
      const res = await request(app({ history })).get(`/v1/queues/email/history?hours=${hours}`);
      expect(res.status).toBe(422);
      expect(res.body.errors[0].field).toBe('hours');
    }
    const locked = app({ history, apiToken: 's3cret-s3cret-s3cret' });
    expect((await request(locked).get('/v1/queues/email/history')).status).toBe(401);
    const ok = await request(locked)
      .get('/v1/queues/email/history')
      .set('Authorization', 'Bearer s3cret-s3cret-s3cret');
    expect(ok.status).toBe(200);
    const none = await request(app({})).get('/v1/queues/email/history');
    expect(none.status).toBe(501);
  });
});

describe('GET /v1/queues/:queue/history from Prometheus (PROMETHEUS_URL)', () => {
  let server: Server;
  let url: string;
  const asked: URLSearchParams[] = [];
  let answer: (query: string, start: number, step: number) => unknown;

  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      const params = new URL(req.url ?? '/', 'http://x').searchParams;
      if (!req.url?.startsWith('/prom/api/v1/query_range')) {
        res.writeHead(404).end();
        return;
      }
      asked.push(params);
      const body = answer(params.get('query') ?? '', Number(params.get('start')), Number(params.get('step')));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    server.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prom`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const matrix = (values: [number, string][]) => ({
    status: 'success',
    data: { resultType: 'matrix', result: values.length ? [{ metric: {}, values }] : [] },
  });

  it('asks for the workers’ counters and wait gauge per bucket and answers the same shape', async () => {
    asked.length = 0;
    answer = (query, start, step) => {
      // Values at the first bucket's end and the last one's; the last covers 12:00-12:05.
      const last = start + 287 * step;
      if (query.includes('outcome="succeeded"'))
        return matrix([
          [start, '2.9'],
          [last, '5'],
        ]);
      if (query.includes('retrying|dead')) return matrix([[last, '1.0000001']]);
      if (query.includes('polyqueue_job_wait_max_seconds'))
        return matrix([
          [last, '4'],
          [start, 'NaN'],
        ]);
      return { status: 'error', errorType: 'bad_data', error: 'unexpected query' };
    };
    const res = await request(app({ prometheusUrl: url })).get('/v1/queues/email/history');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      source: 'prometheus',
      stepSeconds: 300,
      from: '2026-11-29T12:05:00.000Z',
    });
    expect(res.body.points).toHaveLength(288);
    expect(res.body.points[0]).toEqual({
      at: '2026-11-29T12:05:00.000Z',
      completed: 3,
      failed: 0,
      oldestWaitMs: null,
    });
    expect(res.body.points.at(-1)).toEqual({
      at: '2026-11-30T12:00:00.000Z',
      completed: 5,
      failed: 1,
      oldestWaitMs: 4_000,
    });
    expect(asked.map((p) => p.get('query'))).toEqual([
      'sum(increase(polyqueue_jobs_processed_total{queue="email",outcome="succeeded"}[300s]))',
      'sum(increase(polyqueue_jobs_processed_total{queue="email",outcome=~"retrying|dead"}[300s]))',
      'max(max_over_time(polyqueue_job_wait_max_seconds{queue="email"}[300s]))',
    ]);
    // Evaluated at each bucket's end, over one step.
    expect(asked[0]!.get('start')).toBe(String(Date.parse('2026-11-29T12:10:00Z') / 1000));
    expect(asked[0]!.get('end')).toBe(String(Date.parse('2026-11-30T12:05:00Z') / 1000));
    expect(asked[0]!.get('step')).toBe('300');
  });

  it('answers 502 naming Prometheus when it answers an error or cannot be reached', async () => {
    answer = () => ({ status: 'error', errorType: 'bad_data', error: 'parse error at char 3' });
    const bad = await request(app({ prometheusUrl: url })).get('/v1/queues/email/history');
    expect(bad.status).toBe(502);
    expect(bad.body.detail).toMatch(/Prometheus at http:\/\/127\.0\.0\.1:\d+ answered an error: parse error/);
    const down = await request(app({ prometheusUrl: 'http://127.0.0.1:9/' })).get('/v1/queues/email/history');
    expect(down.status).toBe(502);
    expect(down.body.detail).toMatch(/Prometheus at http:\/\/127\.0\.0\.1:9 did not answer/);
  });
});
