/**
 * `--scenario api`: POST /v1/emails answered per second by the API on the default stack
 * (BROKER=sqlite, STATE_URL=sqlite, both files on disk, synchronous=FULL: 202 only once the job
 * record and the queue row are synced), without and with the email worker taking the jobs,
 * versus a bare node http server that only parses the JSON. Each server is its own process
 * started as `npm run start:api` starts it (compiled JS, built first when stale); the load comes
 * from this process: `concurrency` keep-alive clients, each sending its next request when the
 * last is answered. Beside the rates, each server's CPU per request (/proc/<pid>/stat over the
 * timed load): what a request costs it, however much the load generator let through.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { processCpuMs } from './cpu-budget';
import { keepAlivePoster } from './http-client';
import { fmt, median, percentile } from './measure';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BODY = JSON.stringify({
  to: 'someone@example.com',
  subject: 'Hello',
  body: 'A message from the bench.',
});

export interface AcceptOptions {
  runs: number;
  concurrency: number;
  /** Timed seconds per contender and run, after one second of untimed load. */
  seconds: number;
}

interface Sample {
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  /** The server process's CPU (user + system) per accepted request, in µs; the API's alone. */
  cpuUs?: number;
}

interface Started {
  port: number;
  /** The process answering the requests (the API, not the worker beside it). */
  pid: number;
  /** Stops the processes; resolves once they have exited. */
  stop(): Promise<void>;
  /** After stop: accepted jobs not found in the files (must be 0). */
  check?(accepted: number): string;
}

/** The bare server: parse the JSON, answer 202 with an id, as the API's answer looks. */
const BARE_SERVER = `
const http = require('node:http');
let n = 0;
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    try { JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { res.writeHead(400).end(); return; }
    const body = JSON.stringify({ id: String(++n), status: 'queued' });
    res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
`;

function spawnLogged(args: string[], env: NodeJS.ProcessEnv, cwd = root): ChildProcess {
  return spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Resolves with the first JSON log line `match` accepts. */
function waitForLine<T>(
  child: ChildProcess,
  match: (line: Record<string, unknown>) => T | undefined,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const onExit = (code: number | null) =>
      reject(new Error(`process exited with ${code} before it was ready`));
    child.once('exit', onExit);
    lines.on('line', (line) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line);
      } catch {
        return;
      }
      const found = match(parsed);
      if (found !== undefined) {
        child.off('exit', onExit);
        resolve(found);
      }
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function startBare(): Promise<Started> {
  const child = spawnLogged(['-e', BARE_SERVER], process.env);
  const port = await waitForLine(child, (l) => (typeof l.port === 'number' ? l.port : undefined));
  return { port, pid: child.pid!, stop: () => stopChild(child) };
}

/**
 * The API (and the email worker) on fresh files in a temporary directory; or, `inMemory`, the
 * API alone with both databases in memory: no file, no sync, what the API costs in CPU alone.
 */
async function startApi(withWorker: boolean, tree = root, inMemory = false): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'polyqueue-api-bench-'));
  const env = {
    ...process.env,
    BROKER: 'sqlite',
    SQLITE_PATH: inMemory ? ':memory:' : join(dir, 'polyqueue.db'),
    STATE_URL: `sqlite:${inMemory ? ':memory:' : join(dir, 'state.db')}`,
    STORAGE_ROOT: join(dir, 'storage'),
    OUTBOX_DIR: join(dir, 'outbox'),
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
  };
  const children: ChildProcess[] = [];
  if (withWorker) {
    const worker = spawnLogged(['apps/email-worker/dist/main.js'], env, tree);
    children.push(worker);
    await waitForLine(worker, (l) => (l.msg === 'worker ready' ? true : undefined));
  }
  const api = spawnLogged(['apps/api/dist/main.js'], env, tree);
  children.push(api);
  const port = await waitForLine(api, (l) => (typeof l.port === 'number' ? l.port : undefined));
  return {
    port,
    pid: api.pid!,
    stop: async () => {
      for (const child of children.reverse()) await stopChild(child);
    },
    check: (accepted) => {
      if (inMemory) {
        rmSync(dir, { recursive: true, force: true });
        return `${accepted} accepted, in memory`;
      }
      const state = new Database(join(dir, 'state.db'), { readonly: true });
      const queue = new Database(join(dir, 'polyqueue.db'), { readonly: true });
      const records = state.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM polyqueue_jobs').get()!.n;
      const rows = queue.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM polyqueue_email').get()!.n;
      state.close();
      queue.close();
      rmSync(dir, { recursive: true, force: true });
      // Without the worker every accepted job is still a queue row; with it, rows leave.
      const missing = withWorker ? accepted - records : Math.max(accepted - records, accepted - rows);
      return `${accepted} accepted, ${records} records, ${rows} queue rows${missing > 0 ? `, ${missing} MISSING` : ''}`;
    },
  };
}

/**
 * How long one durable commit takes on this disk now (WAL, synchronous=FULL, as the API's files):
 * better-sqlite3 commits on the event loop, so this bounds the API (see docs/benchmarks.md).
 */
function commitMs(): number {
  const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sync-probe-'));
  const db = new Database(join(dir, 'probe.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    insert.run('x'.repeat(300));
    times.push(performance.now() - t0);
  }
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return median(times);
}

/** `concurrency` clients on keep-alive connections for `ms`; counts the 202s. */
async function load(port: number, concurrency: number, ms: number): Promise<Sample & { accepted: number }> {
  const poster = keepAlivePoster(port, concurrency);
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  const until = started + ms;
  const client = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      const { status } = await poster.post('/v1/emails', BODY);
      if (status === 202) latencies.push(performance.now() - t0);
      else failures += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const elapsed = performance.now() - started;
  poster.close();
  if (failures > 0) throw new Error(`${failures} requests were not answered 202`);
  latencies.sort((a, b) => a - b);
  return {
    accepted: latencies.length,
    perSec: (latencies.length / elapsed) * 1000,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

export async function apiAcceptScenario(options: AcceptOptions): Promise<void> {
  const contenders = [
    { label: 'bare node http server (JSON.parse, 202)', start: startBare },
    { label: 'API POST /v1/emails, sqlite, no worker', start: () => startApi(false) },
    { label: 'API POST /v1/emails, sqlite, email worker running', start: () => startApi(true) },
    {
      label: 'same API, both databases :memory: (no sync; not durable)',
      start: () => startApi(false, root, true),
    },
  ];
  // BENCH_API_BEFORE=<a worktree of an earlier commit, its node_modules linked>: the same two
  // API rows from that tree, in the same run, to show what a change did.
  const before = process.env.BENCH_API_BEFORE;
  if (before) {
    contenders.push(
      { label: `same, no worker, at ${before}`, start: () => startApi(false, before) },
      { label: `same, email worker running, at ${before}`, start: () => startApi(true, before) },
    );
  }
  // The services run as the start:* scripts run them, compiled (not through tsx): each tree is
  // built once, when stale, before any contender starts.
  for (const tree of before ? [root, before] : [root])
    execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: tree, stdio: 'inherit' });
  const samples = contenders.map((): Sample[] => []);
  const commits: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    commits.push(commitMs());
    for (const [i, c] of contenders.entries()) {
      const server = await c.start();
      const warm = await load(server.port, options.concurrency, 1_000);
      const cpuBefore = processCpuMs(server.pid);
      const timed: Sample & { accepted: number } = await load(
        server.port,
        options.concurrency,
        options.seconds * 1_000,
      );
      const cpuAfter = processCpuMs(server.pid);
      if (cpuBefore !== undefined && cpuAfter !== undefined)
        timed.cpuUs = ((cpuAfter - cpuBefore) * 1000) / timed.accepted;
      await server.stop();
      const check = server.check?.(warm.accepted + timed.accepted);
      if (check?.includes('MISSING')) throw new Error(`${c.label}: ${check}`);
      samples[i]!.push(timed);
      process.stderr.write(
        `run ${run + 1}/${options.runs} ${c.label}: ${fmt(timed.perSec)}/s, ${fmt(timed.cpuUs ?? Number.NaN)} µs CPU/request${check ? ` (${check})` : ''}\n`,
      );
    }
  }
  const med = samples.map((s) => ({
    perSec: median(s.map((x) => x.perSec)),
    p50Ms: median(s.map((x) => x.p50Ms)),
    p99Ms: median(s.map((x) => x.p99Ms)),
    cpuUs: median(s.map((x) => x.cpuUs ?? Number.NaN)),
  }));
  const bare = med[0]!.perSec;
  const bareCpu = med[0]!.cpuUs;
  console.log(
    `\napi accept: POST /v1/emails, ${options.concurrency} keep-alive clients, ${options.seconds} s per run after 1 s of warm-up, median of ${options.runs} runs; one durable commit (WAL, synchronous=FULL) took ${fmt(median(commits), 2)} ms (median; per run ${commits.map((c) => fmt(c, 2)).join(', ')}); node ${process.version}\n`,
  );
  // The server's CPU per request is the ratio's other face: what the request costs, whatever the
  // load generator (on the same cores) let through.
  console.log(
    '| contender | requests/s | p50 ms | p99 ms | ÷ bare server | server CPU µs/request | bare ÷ this |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [i, c] of contenders.entries()) {
    const m = med[i]!;
    const ratio = i === 0 ? '—' : `${fmt(m.perSec / bare, 2)}x`;
    const cpuRatio = i === 0 ? '—' : `${fmt(bareCpu / m.cpuUs, 2)}x`;
    console.log(
      `| ${c.label} | ${fmt(m.perSec)} | ${fmt(m.p50Ms, 1)} | ${fmt(m.p99Ms, 1)} | ${ratio} | ${fmt(m.cpuUs)} | ${cpuRatio} |`,
    );
  }
}
