/**
 * `npm run bench -- --scenario startup [--runs 3]`: each service started from source through
 * tsx (`node --import tsx apps/<app>/src/main.ts`, how the services ran before they were
 * compiled, and how tests still run some of them), compiled (`node apps/<app>/dist/main.js`, how
 * `npm start`, `start:*` and the images run them) and compiled with `--enable-source-maps` (what
 * NODE_OPTIONS=--enable-source-maps costs), on the embedded sqlite broker and state store, each
 * run in a fresh directory.
 *
 * Start-up: from spawn to the service's ready log line (the api's "listening on", a worker's
 * "worker ready"), so it includes loading the code, opening the broker and the state store.
 * RSS: the process's resident memory (/proc/<pid>/status VmRSS) one second after that line,
 * idle. Runs interleave the variants so drift on a noisy machine hits them alike; medians.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort } from '@polyqueue/testkit/net';
import { fmt, median } from './measure';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');

const services = [
  { app: 'api', ready: /"msg":"listening on / },
  { app: 'email-worker', ready: /"msg":"worker ready"/ },
  { app: 'image-worker', ready: /"msg":"worker ready"/ },
] as const;

const variants = {
  tsx: (app: string) => ['--import', 'tsx', join(repoRoot, 'apps', app, 'src', 'main.ts')],
  compiled: (app: string) => [join(repoRoot, 'apps', app, 'dist', 'main.js')],
  'compiled + source maps': (app: string) => [
    '--enable-source-maps',
    join(repoRoot, 'apps', app, 'dist', 'main.js'),
  ],
} as const;
type Variant = keyof typeof variants;

interface Sample {
  startMs: number;
  rssMb: number;
}

export async function startupScenario(options: { runs: number }): Promise<void> {
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: repoRoot, stdio: 'inherit' });
  const samples = new Map<string, Sample[]>();
  for (let run = 0; run < options.runs; run += 1) {
    for (const service of services) {
      for (const variant of Object.keys(variants) as Variant[]) {
        const sample = await startOnce(service.app, variant, service.ready);
        const key = `${service.app}:${variant}`;
        samples.set(key, [...(samples.get(key) ?? []), sample]);
        process.stderr.write(
          `run ${run + 1}: ${service.app} ${variant}: ${fmt(sample.startMs)} ms, ${fmt(sample.rssMb)} MB\n`,
        );
      }
    }
  }
  console.log(
    `\nStart-up (spawn to ready log line) and idle RSS, sqlite, node ${process.version}, median of ${options.runs}\n`,
  );
  const names = Object.keys(variants) as Variant[];
  console.log(
    `| service | ${names.map((v) => `start-up, ${v}`).join(' | ')} | ${names.map((v) => `RSS, ${v}`).join(' | ')} |`,
  );
  console.log(`|---|${names.map(() => '---:|').join('')}${names.map(() => '---:|').join('')}`);
  for (const { app } of services) {
    const of = (variant: Variant) => samples.get(`${app}:${variant}`) ?? [];
    const start = (variant: Variant) => `${fmt(median(of(variant).map((s) => s.startMs)))} ms`;
    const rss = (variant: Variant) => `${fmt(median(of(variant).map((s) => s.rssMb)))} MB`;
    console.log(`| ${app} | ${names.map(start).join(' | ')} | ${names.map(rss).join(' | ')} |`);
  }
}

async function startOnce(app: string, variant: Variant, ready: RegExp): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), 'polyqueue-startup-'));
  const env = {
    ...process.env,
    BROKER: 'sqlite',
    SQLITE_PATH: join(dir, 'queue.db'),
    STATE_URL: `sqlite:${join(dir, 'state.db')}`,
    STORAGE_ROOT: join(dir, 'storage'),
    OUTBOX_DIR: join(dir, 'outbox'),
    PORT: String(await freePort()),
    METRICS_PORT: '0',
    LOG_LEVEL: 'info',
  };
  const startedAt = performance.now();
  const child = spawn(process.execPath, variants[variant](app), {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await readyLine(child, ready);
    const startMs = performance.now() - startedAt;
    // Idle for a second: what the process holds once started, not a transient peak.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
    return { startMs, rssMb: rssKb / 1024 };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

function readyLine(child: ChildProcess, ready: RegExp): Promise<void> {
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 60 s:\n${lines.join('\n')}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`exited (${code}) before ready:\n${lines.join('\n')}`)));
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        if (ready.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}
