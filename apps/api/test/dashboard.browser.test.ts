/**
 * The dashboard in a real browser: playwright-core drives Debian's chromium against the API
 * listening on a port, with API_TOKEN set, twice: on the sqlite broker and state store (temp
 * files), and on redis-streams with the Redis state store (the local Redis, a key prefix of
 * the run's own); one scenario, run by each.
 * and a worker runtime in this process whose handler fails for good until the test heals it.
 * It signs in (a wrong token first), pauses a queue and watches jobs posted through the API
 * wait as ready, resumes it and watches them die, redrives one from the dead letters and sees
 * it succeed in the job lookup, retries another, purges, and switches to Japanese.
 * Screenshots of each page are taken every run; with UPDATE_SCREENSHOTS=1 they replace the
 * ones in docs/dashboard/ (docs/dashboard.md shows them), otherwise they go to a temp folder so
 * that running the tests leaves the checkout as it was.
 *
 * Nothing sleeps: the test waits for the page to show a text or an attribute (playwright's
 * waitFor) and for the worker's pause callback. In CI a missing chromium fails the run.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOutcomeHistory, startWorkerHeartbeat } from '@polyqueue/app-runtime';
import {
  createRedisQueueControls,
  createRedisQueueLimits,
  createRedisStateStore,
  createRedisWorkerRegistry,
} from '@polyqueue/broker-redis';
import {
  createBrokerFromEnv,
  createQueueControls,
  createQueueLimits,
  createStateStore,
  createWorkerRegistry,
} from '@polyqueue/brokers';
import {
  type CompleteBroker,
  MemoryMetricsHistory,
  pausable,
  type QueueControls,
  type QueueLimits,
  type StateStore,
  silentLogger,
  type WorkerRegistry,
} from '@polyqueue/core';
import { eventually } from '@polyqueue/testkit';
import { Redis } from 'ioredis';
import { type Browser, chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { startEmailWorker } from './helpers';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'browser-s3cret';
const tempShots = join(tmpdir(), `polyqueue-dashboard-shots-${process.pid}`);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** What a run differs by: its broker, and where its state-side stores live. */
interface Backend {
  name: string;
  /** The docs' screenshots come from this run with UPDATE_SCREENSHOTS=1 (sqlite only). */
  docsShots: boolean;
  brokerEnv(dir: string): Record<string, string>;
  /** The STATE_URL a worker process of this run would have. */
  stateUrl(dir: string): string;
  openStores(
    dir: string,
  ): Promise<{ state: StateStore; controls: QueueControls; workers: WorkerRegistry; limits: QueueLimits }>;
  /** Removes what the run left in a shared server. */
  cleanup?(): Promise<void>;
}

// The Redis run keeps every key under a prefix of its own: the shared Redis holds other tests'
// queues, pause flags and worker heartbeats.
const redisPrefix = `pq-browser-${randomUUID().slice(0, 8)}`;
const backends: Backend[] = [
  {
    name: 'sqlite',
    docsShots: true,
    brokerEnv: (dir) => ({ BROKER: 'sqlite', SQLITE_PATH: join(dir, 'queue.db'), SQLITE_POLL_MAX_MS: '50' }),
    stateUrl: (dir) => `sqlite:${join(dir, 'state.db')}`,
    async openStores(dir) {
      const stateUrl = `sqlite:${join(dir, 'state.db')}`;
      return {
        state: await createStateStore(stateUrl, {}),
        controls: await createQueueControls(stateUrl, {}),
        workers: await createWorkerRegistry(stateUrl, {}),
        limits: await createQueueLimits(stateUrl, {}),
      };
    },
  },
  {
    name: 'redis-streams',
    docsShots: false,
    brokerEnv: () => ({ BROKER: 'redis-streams', REDIS_URL, POLYQUEUE_PREFIX: redisPrefix }),
    stateUrl: () => REDIS_URL,
    async openStores() {
      const options = { prefix: redisPrefix };
      try {
        return {
          state: await createRedisStateStore(REDIS_URL, options),
          controls: await createRedisQueueControls(REDIS_URL, options),
          workers: await createRedisWorkerRegistry(REDIS_URL, options),
          limits: await createRedisQueueLimits(REDIS_URL, options),
        };
      } catch (error) {
        throw new Error(
          `cannot reach Redis at ${REDIS_URL} (redis-server --daemonize yes): ${(error as Error).message}`,
        );
      }
    },
    async cleanup() {
      const redis = new Redis(REDIS_URL);
      const keys = [...(await redis.keys(`${redisPrefix}:*`)), ...(await redis.keys(`{${redisPrefix}:*`))];
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  },
];
const docsShots = join(dirname(fileURLToPath(import.meta.url)), '../../../docs/dashboard');
const haveChromium = existsSync(CHROMIUM);
// Outside CI a machine without chromium skips this file (said once below); in CI it fails.
const run = haveChromium || process.env.CI !== undefined;
if (!run) console.warn(`dashboard browser test skipped: no ${CHROMIUM} (apt-get install chromium)`);

describe.runIf(run).each(backends)('dashboard in chromium on $name', (backend) => {
  const shots = process.env.UPDATE_SCREENSHOTS && backend.docsShots ? docsShots : tempShots;
  let dir: string;
  let broker: CompleteBroker;
  let state: StateStore;
  let controls: QueueControls;
  let workers: WorkerRegistry;
  let limits: QueueLimits;
  let stopHeartbeat: () => Promise<void>;
  let server: Server;
  let base: string;
  let browser: Browser;
  let page: Page;
  const stop = new AbortController();
  let running: Promise<void>;
  /** While true the handler fails for good; the test heals it before redriving. */
  let failing = true;
  /** The worker's own view of the pause flag, from the pause gate's onChange. */
  let workerPaused = false;
  /** What the worker's outcomes added to the overview's charts, counted as it reports them. */
  const outcomes = { completed: 0, failed: 0 };
  let stopHistory: () => Promise<void>;

  beforeAll(async () => {
    if (!haveChromium)
      throw new Error(`the dashboard's browser test needs ${CHROMIUM}: apt-get install chromium`);
    dir = await mkdtemp(join(tmpdir(), 'polyqueue-dashboard-'));
    const stateUrl = backend.stateUrl(dir);
    broker = await createBrokerFromEnv(backend.brokerEnv(dir));
    ({ state, controls, workers, limits } = await backend.openStores(dir));
    // The charts' history: in memory here (each store has its contract suite), written by this
    // test's worker as run-worker.ts wires it, flushed often so that the page sees it soon.
    const history = new MemoryMetricsHistory();
    const tally = await startOutcomeHistory({
      stateUrl,
      env: {},
      logger: silentLogger(),
      history,
      flushMs: 200,
    });
    stopHistory = tally.stop;
    const app = createServer({
      broker,
      state,
      controls,
      workers,
      queueLimits: limits,
      history,
      apiToken: TOKEN,
      storageRoot: dir,
    });
    server = createHttpServer(app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    ({ running } = await startEmailWorker({
      broker,
      consumeFrom: pausable(broker, {
        controls,
        pollMs: 100,
        onChange: (_queue, paused) => {
          workerPaused = paused;
        },
      }),
      state,
      failing: () => failing,
      signal: stop.signal,
      history: {
        observe(event) {
          if (event.outcome === 'succeeded') outcomes.completed++;
          if (event.outcome === 'retrying' || event.outcome === 'dead') outcomes.failed++;
          tally.observe(event);
        },
      },
    }));
    // The worker of this test announces itself as run-worker.ts does for a worker process.
    stopHeartbeat = await startWorkerHeartbeat({
      stateUrl,
      env: {},
      queue: 'email',
      concurrency: 4,
      inFlight: () => 0,
      logger: silentLogger(),
      registry: workers,
    });

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
    mkdirSync(shots, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    stop.abort();
    await running;
    await new Promise((resolve) => server?.close(resolve));
    await stopHeartbeat?.();
    await stopHistory?.();
    await Promise.all([
      broker?.close(),
      state?.close(),
      controls?.close(),
      workers?.close(),
      limits?.close(),
    ]);
    if (dir) await rm(dir, { recursive: true, force: true });
    await backend.cleanup?.();
  });

  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  /** A text as a whole-content pattern (a hasText string would also match a part). */
  const exactly = (text: string) => new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
  /** Waits until the element matching selector shows exactly text. */
  const shows = (selector: string, text: string | RegExp) =>
    page
      .locator(selector, { hasText: typeof text === 'string' ? exactly(text) : text })
      .first()
      .waitFor({ timeout: 20_000 });
  const cell = (col: string) => `#queues tr[data-queue="email"] td[data-col="${col}"]`;

  async function postEmail(subject: string): Promise<string> {
    const res = await fetch(`${base}/v1/emails`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ to: 'ops@example.com', subject, body: 'hello' }),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  }
  const untilStatus = (id: string, status: string) =>
    eventually(
      async () => (await state.getJob(id))?.status,
      (s) => s === status,
      `job ${id} ${status}`,
    );

  it('signs in, shows counts live, redrives, retries, purges and speaks Japanese', async () => {
    // Sign in: a wrong token shows the error and sets no cookie.
    await page.goto(`${base}/dashboard`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
    await page.fill('#token', 'wrong-token');
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/dashboard/session')),
      page.click('button[type=submit]'),
    ]);
    expect(refused.status()).toBe(401);
    await page.locator('#sign-in-error').waitFor({ state: 'visible' });
    expect(await page.context().cookies()).toEqual([]);
    await shot('sign-in');
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await shows('#broker-name', broker.name);
    expect(await page.locator('.badges li').count()).toBeGreaterThan(5);

    // Pause from the page: the badge changes and the worker stops fetching; posted jobs wait.
    await shows(`#queues tr[data-queue="email"] td[data-col="state"]`, 'Running');
    await page.click('button[data-queue="email"]');
    await shows(`#queues tr[data-queue="email"] td[data-col="state"]`, 'Paused');
    expect(await controls.paused()).toEqual(new Set(['email']));
    await eventually(
      async () => workerPaused,
      (p) => p,
      'the worker paused',
    );
    const ids = [await postEmail('first'), await postEmail('second')];
    await shows(cell('ready'), '2');
    await shot('overview');

    // Resume: the jobs run, fail for good, and the overview counts them dead.
    await page.click('button[data-queue="email"]');
    await shows(`#queues tr[data-queue="email"] td[data-col="state"]`, 'Running');
    await shows(cell('dead'), '2');
    await shows(cell('ready'), '0');

    // Limits from the page: a refused value keeps the form open with the API's reason; saved
    // values reach the state store (what the workers read) and the cell; emptied fields clear.
    const limitsCell = `#queues tr[data-queue="email"] td[data-col="limits"]`;
    await shows(`${limitsCell} [data-limits]`, 'None');
    await page.click('[data-edit-limits="email"]');
    await page.fill('#limit-concurrency-email', '0');
    await page.click(`${limitsCell} form button[type=submit]`);
    await shows('#notice', /concurrency/);
    expect(await page.isVisible(`${limitsCell} form`)).toBe(true);
    expect((await limits.limits()).has('email')).toBe(false);
    await page.fill('#limit-ratePerSec-email', '50');
    await page.fill('#limit-concurrency-email', '3');
    await shot('limits');
    await page.click(`${limitsCell} form button[type=submit]`);
    await shows('#notice', 'Limits of email saved; every worker follows them within a second.');
    await shows(`${limitsCell} [data-limits]`, '50/s · 3 at once');
    expect((await limits.limits()).get('email')).toEqual({ ratePerSec: 50, concurrency: 3 });
    await page.click('[data-edit-limits="email"]');
    expect(await page.inputValue('#limit-ratePerSec-email')).toBe('50');
    await page.fill('#limit-ratePerSec-email', '');
    await page.fill('#limit-concurrency-email', '');
    await page.click(`${limitsCell} form button[type=submit]`);
    await shows(`${limitsCell} [data-limits]`, 'None');
    expect((await limits.limits()).has('email')).toBe(false);

    // The dead letters: reason shown; redrive the first one, healed, and see it succeed.
    await page.click('#queues tr[data-queue="email"] a');
    await shows(`#dead-letters tr[data-id="${ids[0]}"]`, /mailbox unavailable/);
    expect(await page.locator('#dead-letters tbody tr').count()).toBe(2);
    await shot('dead-letters');
    failing = false;
    await page.check(`#dead-letters tr[data-id="${ids[0]}"] input[type=checkbox]`);
    await page.click('#redrive-selected');
    await shows('#notice', '1 job(s) sent back to email.');
    await untilStatus(ids[0]!, 'succeeded');
    await page.goto(`${base}/dashboard#/job/${ids[0]}`);
    await shows('#job-status', 'succeeded');
    // Its attempts: the first one dead with the handler's error, the redriven one succeeded, both
    // by this test's worker; the result's email headers as a list.
    const attemptRows = '#attempts tbody tr';
    await page.locator(`${attemptRows}[data-outcome="succeeded"]`).waitFor();
    expect(await page.locator(attemptRows).count()).toBe(2);
    await shows(`${attemptRows}[data-outcome="dead"] td.error-text summary`, /mailbox unavailable: 550/);
    expect(await page.locator(`${attemptRows} td code`, { hasText: 'test-host:1:helpers' }).count()).toBe(2);
    await shows('#email-headers dd', 'first');
    await shows('#email-headers dd', `<${ids[0]}@example.test>`);
    // The payload it was posted with, as indented JSON (the page holds the session, so it is shown).
    await shows('#job-payload', /"subject": "first"/);
    await shows('#job-payload', /"to": "ops@example\.com"/);
    // The error's stack opens on demand.
    await page.click(`${attemptRows}[data-outcome="dead"] summary`);
    await shows(`${attemptRows}[data-outcome="dead"] pre.stack`, /^NonRetryableError: mailbox unavailable/);
    await shot('job');

    // The other one by its job page: dead, a retry button, then succeeded (the page follows it).
    await page.goto(`${base}/dashboard#/job/${ids[1]}`);
    await shows('#job-status', 'dead');
    await shows('#attempts tbody tr[data-outcome="dead"] td.error-text summary', /mailbox unavailable/);
    expect(await page.locator('#attempts tbody tr').count()).toBe(1);
    await page.click('#retry');
    await shows('#job-status', 'succeeded');
    expect((await state.getJob(ids[1]!))?.status).toBe('succeeded');

    // Purge asks for the queue's name first.
    failing = true;
    const doomed = await postEmail('third');
    await untilStatus(doomed, 'dead');
    await page.goto(`${base}/dashboard#/dead/email`);
    await page.locator(`#dead-letters tr[data-id="${doomed}"]`).waitFor();
    await page.fill('#purge-confirm', 'emai');
    expect(await page.isDisabled('#purge')).toBe(true);
    await page.fill('#purge-confirm', 'email');
    await page.click('#purge');
    await shows('#notice', '1 dead letter(s) of email deleted.');
    expect((await broker.stats('email')).dead).toBe(0);

    // The Jobs page finds a job by its Idempotency-Key, and its row opens the job lookup.
    const key = `order-${Date.now()}`;
    const keyed = await fetch(`${base}/v1/emails`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${TOKEN}`,
        'idempotency-key': key,
      },
      body: JSON.stringify({ to: 'ops@example.com', subject: 'keyed', body: 'hello' }),
    });
    const keyedId = ((await keyed.json()) as { id: string }).id;
    await untilStatus(keyedId, 'dead');
    await page.goto(`${base}/dashboard#/jobs`);
    await page.fill('#search-q', key);
    await page.click('#job-search button[type=submit]');
    // The unfiltered list (which holds this job too) stays on screen until the search's own
    // table replaces it: wait for the table that answers `q=<key>` to have finished loading.
    const search = new URLSearchParams({ q: key }).toString();
    await page.locator(`#jobs[data-search="${search}"][aria-busy="false"]`).waitFor();
    expect(await page.locator(`#jobs tr[data-id="${keyedId}"]`).count()).toBe(1);
    expect(await page.locator('#jobs tbody tr').count()).toBe(1);
    await shot('jobs');
    await page.click(`#jobs tr[data-id="${keyedId}"] a`);
    await shows('#job-status', 'dead');

    // Back on the search: "Retry all matching" asks with the dry run's count, then retries.
    await page.goBack();
    await page.locator(`#jobs[data-search="${search}"][aria-busy="false"]`).waitFor();
    await page.click('#bulk-retry');
    await shows('#bulk-question', '1 job(s) match this search. Retry the dead ones among them?');
    expect((await state.getJob(keyedId))?.status).toBe('dead'); // the dry run changed nothing
    failing = false;
    await page.click('#bulk-confirm');
    await shows('#notice', '1 of 1 matching job(s) retried; 0 skipped.');
    await untilStatus(keyedId, 'succeeded');
    failing = true;

    // The Workers page lists this test's worker by its heartbeat.
    await page.goto(`${base}/dashboard#/workers`);
    await page.locator('#workers tbody tr[data-queue="email"]').waitFor();
    expect(await page.locator('#workers tbody tr').count()).toBe(1);
    await shot('workers');

    // Without a heartbeat, a queue with ready jobs gets the overview's warning.
    await stopHeartbeat();
    await controls.pause('email');
    await eventually(
      async () => workerPaused,
      (p) => p,
      'the worker sees the pause',
    );
    const waiting = await postEmail('nobody runs me');
    // Cancel from the job page: a job waiting in the paused queue is cancelled and never runs.
    const unwanted = await postEmail('cancel me');
    await page.goto(`${base}/dashboard#/job/${unwanted}`);
    await shows('#job-status', 'queued');
    await shows('#attempts-empty', 'No attempt has started yet.');
    await page.click('#cancel');
    await shows('#job-status', 'cancelled');
    await shows('#notice', `Job ${unwanted} is cancelled: it will not run (a running one is stopped).`);
    expect(await page.locator('#cancel').count()).toBe(0);
    await page.goto(`${base}/dashboard#/overview`);
    await shows('#worker-warnings p[data-queue="email"]', /no live worker/);
    await controls.resume('email');
    await untilStatus(waiting, 'dead');
    await page.locator('#worker-warnings p').waitFor({ state: 'detached', timeout: 20_000 });

    // The overview's charts count what the worker did: its completed jobs and failed attempts.
    expect(outcomes.completed).toBeGreaterThan(0);
    expect(outcomes.failed).toBeGreaterThan(0);
    const totals = '#history .queue-history[data-queue="email"] .totals';
    await page
      .locator(`${totals}[data-completed="${outcomes.completed}"][data-failed="${outcomes.failed}"]`)
      .waitFor({ timeout: 20_000 });
    await shows(
      totals,
      new RegExp(`^Completed ${outcomes.completed} · Failed ${outcomes.failed} · Longest wait \\d`),
    );
    expect(await page.locator('#chart-email-throughput title').textContent()).toBe(
      'Jobs per minute in email',
    );
    expect(
      await page.locator('#chart-email-throughput [data-series="failed"] circle').count(),
    ).toBeGreaterThan(0);
    // The same numbers as a table, for those who cannot see the chart.
    await page.click('#history .queue-history[data-queue="email"] summary');
    const completedCells = page.locator('#history table[data-queue="email"] tbody td:nth-child(2)');
    const completedSum = (await completedCells.allTextContents()).reduce((n, c) => n + Number(c), 0);
    expect(completedSum).toBe(outcomes.completed);
    await page.locator('#history').screenshot({ path: join(shots, 'history.png') });

    // An image job's page shows its variants as thumbnails, served from the output folder.
    const imageId = `image-${randomUUID()}`;
    await mkdir(join(dir, 'variants', imageId), { recursive: true });
    const thumbnail = await sharp({ create: { width: 64, height: 40, channels: 3, background: '#3366cc' } })
      .webp()
      .toBuffer();
    await writeFile(join(dir, 'variants', imageId, 'thumbnail.webp'), thumbnail);
    const at = new Date().toISOString();
    await state.createJob({
      id: imageId,
      type: 'process_image',
      queue: 'image',
      status: 'succeeded',
      attempts: 1,
      result: {
        variants: [
          {
            name: 'thumbnail',
            path: `variants/${imageId}/thumbnail.webp`,
            width: 64,
            height: 40,
            format: 'webp',
            bytes: thumbnail.length,
          },
        ],
      },
      createdAt: at,
      updatedAt: at,
    });
    await page.goto(`${base}/dashboard#/job/${imageId}`);
    const img = page.locator('#image-variants li[data-variant="thumbnail"] img');
    await img.waitFor();
    await eventually(
      () => img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth),
      (width) => width === 64,
      'the thumbnail loaded',
    );

    // An unknown job id.
    await page.goto(`${base}/dashboard#/job/no-such-job`);
    await shows('#job-error', 'No job with id no-such-job.');

    // Japanese, remembered across a reload.
    await page.goto(`${base}/dashboard#/overview`);
    await shows('#broker-name', broker.name);
    await page.selectOption('#lang', 'ja');
    await shows('nav a[data-route="overview"]', '概要');
    await shows('#queues th', '待機中');
    await shows('#history-h', '直近 24 時間');
    await page.reload();
    await shows('nav a[data-route="overview"]', '概要');
    await shows(`#queues tr[data-queue="email"] td[data-col="state"]`, '稼働中');
    expect(await page.getAttribute('html', 'lang')).toBe('ja');
    // The job page in Japanese; the cancelled job was acked unrun once the queue resumed.
    expect((await state.getJob(unwanted))?.status).toBe('cancelled');
    await page.goto(`${base}/dashboard#/job/${ids[0]}`);
    await shows('#attempts-h', '試行履歴');
    await shows('#attempts th', '開始');
    await shows('#attempts tbody tr[data-outcome="succeeded"] [data-status]', '成功');
    await shows('#email-headers dt', '件名');
    await shows('#payload-h', 'ペイロード');
    await shot('overview-ja');
  }, 240_000);
});
