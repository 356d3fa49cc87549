/**
 * The end-to-end scenario: the real API and email worker as child processes, started with the
 * root package.json's own `start:*` scripts (so whatever they run, tsx or compiled JS, is what
 * is measured), `concurrency` HTTP clients POSTing /v1/emails over keep-alive connections
 * (raw sockets, http-client.ts), and every email counted where it lands: the worker's outbox
 * (OUTBOX_DIR, one .eml per job id, written under a temporary name and renamed, so a file that
 * exists is complete).
 *
 * Reports emails/s from the first POST sent to the last .eml written, the POSTs' accept rate,
 * and latency per email from its POST being sent to its .eml's mtime (both the wall clock of
 * this machine), p50 and p99. While it runs, each service's resident memory (VmRSS in
 * /proc/<pid>/status) is sampled every 100 ms; the maximum per service is printed. Then where
 * the CPU went, per email and per process, and the bare outbox loop on the same disk
 * (cpu-budget.ts): the ceilings the emails/s figure is compared with.
 *
 * State store and broker as a new user's default stack: STATE_URL sqlite and, with --broker
 * sqlite, SQLITE_PATH, both files in a fresh temp directory. Other brokers take their
 * variables (REDIS_URL, ...) from the environment as the apps do.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '@polyqueue/testkit/net';
import { NOT_QUIET_MS_PER_FILE, outboxCeiling, startCpuBudget } from './cpu-budget';
import { keepAlivePoster } from './http-client';
import { fmt, percentile } from './measure';

export interface E2eOptions {
  broker: string;
  jobs: number;
  /** HTTP clients posting at once. */
  concurrency: number;
  /**
   * The worker alone (`--scenario drain`): every email is queued through the API first, with no
   * worker running; then the API stops, the worker starts and is timed from its ready line to
   * the last .eml, with nothing else on the machine's cores.
   */
  drain?: boolean;
}

const repoRoot = new URL('../../', import.meta.url).pathname;
const READY_TIMEOUT_MS = 120_000;
/** About the size of this bench's .eml files (379–390 B), for the bare outbox loop. */
const OUTBOX_FILE_BYTES = 400;

interface Service {
  name: string;
  child: ChildProcess;
  maxRssKb: number;
}

/**
 * Starts `npm run start:<name>` the way npm would, but with the script's command run by sh
 * directly, so the child's pid is the service's (the scripts `exec` node) and its RSS is the
 * service's own. A `prestart:<name>` script (building compiled JS when stale) runs first.
 */
async function startService(
  name: string,
  env: Record<string, string | undefined>,
  ready: RegExp,
): Promise<Service> {
  const scripts = (
    JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts;
  const command = scripts[`start:${name}`];
  if (!command) throw new Error(`package.json has no start:${name} script`);
  if (scripts[`prestart:${name}`])
    execFileSync('npm', ['run', '--silent', `prestart:${name}`], { cwd: repoRoot, stdio: 'inherit' });
  const child = spawn('sh', ['-c', command], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const service: Service = { name, child, maxRssKb: 0 };
  const tail: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} not ready after ${READY_TIMEOUT_MS} ms:\n${tail.join('\n')}`)),
      READY_TIMEOUT_MS,
    );
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${tail.join('\n')}`));
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        tail.push(line);
        if (tail.length > 30) tail.shift();
        if (ready.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
  return service;
}

function sampleRss(services: Service[]): void {
  for (const s of services) {
    try {
      const status = readFileSync(`/proc/${s.child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      s.maxRssKb = Math.max(s.maxRssKb, kb);
    } catch {
      // exited
    }
  }
}

function cpuOf(service: Service): { name: string; pid: number } {
  return { name: service.name, pid: service.child.pid! };
}

async function stop(service: Service): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  const exited = new Promise((resolve) => service.child.once('exit', resolve));
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

export async function e2eScenario(options: E2eOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pq-e2e-'));
  const outbox = join(dir, 'outbox');
  mkdirSync(outbox);
  const port = await freePort();
  const env = {
    ...process.env,
    BROKER: options.broker,
    SQLITE_PATH: process.env.SQLITE_PATH ?? join(dir, 'polyqueue.db'),
    STATE_URL: process.env.STATE_URL ?? `sqlite:${join(dir, 'state.db')}`,
    OUTBOX_DIR: outbox,
    SMTP_URL: '',
    PORT: String(port),
    HOST: '127.0.0.1',
    STORAGE_ROOT: join(dir, 'storage'),
    METRICS_PORT: String(await freePort()),
  };
  const before = outboxCeiling(dir, options.jobs, OUTBOX_FILE_BYTES);
  if (before.cpuMsPerFile > NOT_QUIET_MS_PER_FILE)
    console.warn(
      `warning: a bare file create costs ${fmt(before.cpuMsPerFile, 3)} ms of CPU now, against about 0.05 on a quiet disk: ` +
        'files deleted in the last minutes (an earlier bench or test run) slow the outbox too, so this run ' +
        'measures the disk more than the code. For figures to compare, wait until nothing has deleted ' +
        'files for about 6 minutes (docs/benchmarks.md, "Issue 15: a bench that slowed what it measured").',
    );
  const services: Service[] = [];
  const sampler = setInterval(() => sampleRss(services), 100);
  try {
    // The API first: it creates the queues some brokers need before a consumer attaches.
    services.push(await startService('api', env, /"msg":"listening on /));
    if (!options.drain) services.push(await startService('email-worker', env, /"msg":"worker ready"/));

    const poster = keepAlivePoster(port, options.concurrency);
    const sentAt = new Map<string, number>();
    let next = 0;
    let rejected = 0;
    const t0 = Date.now();
    let budget = options.drain ? undefined : startCpuBudget(services.map(cpuOf));
    const lane = async () => {
      while (next < options.jobs) {
        const i = next++;
        const sent = Date.now();
        const { status, text } = await poster.post(
          '/v1/emails',
          JSON.stringify({
            to: `user${i}@bench.test`,
            subject: `bench #${i}`,
            body: `Email ${i} of a bench run.`,
          }),
        );
        if (status !== 202) {
          rejected += 1;
          if (rejected === 1) process.stderr.write(`POST answered ${status}: ${text.slice(0, 200)}\n`);
          continue;
        }
        sentAt.set((JSON.parse(text) as { id: string }).id, sent);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, lane));
    const acceptSeconds = (Date.now() - t0) / 1000;
    poster.close();
    let drainFrom: number | undefined;
    if (options.drain) {
      await stop(services[0]!);
      services.push(await startService('email-worker', env, /"msg":"worker ready"/));
      drainFrom = Date.now();
      budget = startCpuBudget([cpuOf(services[1]!)]);
    }

    // Counted where the emails land; bounded so a stuck worker ends the run with what it did.
    const deadline = Date.now() + 120_000 + options.jobs * 10;
    let files: string[] = [];
    while (Date.now() < deadline) {
      files = readdirSync(outbox).filter((f) => f.endsWith('.eml'));
      if (files.length >= sentAt.size) break;
      // Every 250 ms: the listing is this process's largest cost, taken from the cores measured;
      // when the last email landed comes from the files' mtimes, not from this poll.
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    sampleRss(services);
    const cpu = budget!.finish(Math.max(1, files.length));
    const latencies: number[] = [];
    let last = t0;
    for (const file of files) {
      const sent = sentAt.get(file.slice(0, -'.eml'.length));
      if (sent === undefined) continue;
      const landed = statSync(join(outbox, file)).mtimeMs;
      last = Math.max(last, landed);
      latencies.push(landed - sent);
    }
    latencies.sort((a, b) => a - b);
    const seconds = (last - (drainFrom ?? t0)) / 1000;
    console.log(
      `\n${options.drain ? 'drain' : 'e2e'}: ${options.jobs} POST /v1/emails, ${options.concurrency} HTTP clients (keep-alive), broker ${options.broker}, STATE_URL ${env.STATE_URL.split(':')[0]}, email worker WORKER_CONCURRENCY ${process.env.WORKER_CONCURRENCY ?? 'default'}, outbox; services via package.json start:api / start:email-worker; node ${process.version}\n`,
    );
    console.log('| measure | value |');
    console.log('|---|---:|');
    console.log(`| accepted (202) | ${fmt(sentAt.size)} of ${fmt(options.jobs)} (${rejected} not) |`);
    console.log(`| delivered to the outbox | ${fmt(latencies.length)} |`);
    console.log(`| POST accept rate | ${fmt(sentAt.size / acceptSeconds)} /s |`);
    if (options.drain) {
      console.log(
        `| worker alone (ready → last .eml written) | ${fmt(latencies.length / seconds)} emails/s |`,
      );
    } else {
      console.log(
        `| end to end (first POST sent → last .eml written) | ${fmt(latencies.length / seconds)} emails/s |`,
      );
      console.log(`| latency POST sent → .eml written, p50 | ${fmt(percentile(latencies, 50), 0)} ms |`);
      console.log(`| latency p99 | ${fmt(percentile(latencies, 99), 0)} ms |`);
    }
    for (const s of services) console.log(`| max RSS ${s.name} | ${fmt(s.maxRssKb / 1024, 0)} MB |`);
    for (const p of cpu.perEmailMs)
      console.log(`| CPU per email, ${p.name} | ${fmt(p.ms, 3)} ms (kernel ${fmt(p.systemMs, 3)}) |`);
    console.log(
      `| CPU per email, all of these | ${fmt(cpu.totalPerEmailMs, 3)} ms: at most ${fmt(cpu.ceilingPerSec)} emails/s on ${cpu.cores} cores |`,
    );
    console.log(`| machine busy while timed | ${fmt(cpu.machineBusy * 100, 0)}% |`);
    // The outbox's file calls alone, on the same disk: before the services wrote anything, and
    // right after them (the disk still writing their files back).
    const after = outboxCeiling(dir, files.length, OUTBOX_FILE_BYTES);
    for (const [when, raw] of [
      ['before the run', before],
      ['after it', after],
    ] as const) {
      console.log(
        `| raw outbox loop ${when}: write ${OUTBOX_FILE_BYTES} B under a temporary name, rename, synchronous calls as the outbox makes them | ${fmt(raw.filesPerSec)} files/s, ${fmt(raw.cpuMsPerFile, 3)} ms CPU per file |`,
      );
    }
  } finally {
    clearInterval(sampler);
    for (const s of [...services].reverse()) await stop(s);
    rmSync(dir, { recursive: true, force: true });
  }
}
