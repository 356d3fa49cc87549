/**
 * `npm run chaos -- --broker <name> [options]`: one chaos run (chaos-run.ts), its report, and an
 * exit code: 1 when an at-least-once broker lost a job, a request was never answered, or an
 * email lacked its job's Message-ID; 0 otherwise (redis-list reports its losses without failing:
 * it is at-most-once by design). Ctrl-C stops the run and every process it started.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BROKERS, type BrokerName } from './broker-servers';
import { type ChaosHandle, type ChaosOptions, runChaos } from './chaos-run';
import { killAllChildren } from './processes';
import { type RunFacts, summarize } from './report';
import { formatReport, tableHeader, tableRow } from './report-text';
import { snapshotOf } from './snapshot';

const usage = `usage: npm run chaos -- --broker <${BROKERS.join('|')}> [options]

  --n <jobs>               emails to post (300)
  --rate <per s>           posting rate, so the faults land under load (12)
  --concurrency <k>        requests in flight at once (16)
  --smtp-delay-ms <ms>     how long the SMTP sink takes per message (400)
  --lease-ms <ms>          broker lease: SQLITE/REDIS/MYSQL_LEASE_MS, SQS visibility (3000; Kafka: >= 6000)
  --worker-concurrency <k> WORKER_CONCURRENCY of each of the 2 email workers (4)
  --settle-s <s>           wait this long beyond last fault + 3 leases for missing emails (60)
  --request-timeout-ms <ms> client timeout per request before it retries (10000)
  --drain-timeout-ms <ms>  DRAIN_TIMEOUT_MS of the services (10000)
  --state-url <url>        STATE_URL of the services (a sqlite file in the run's temp dir;
                           with --redis-cluster, redis:// on the cluster)
  --redis-cluster          redis-reliable, redis-streams: on the local Redis Cluster
                           (scripts/services/redis-cluster/start.sh, 127.0.0.1:7000-7005), the
                           broker restart a master failover (the queue slot's master SIGKILLed,
                           its replica promoted, the old master restarted as a replica)
  --rev <commit>           run the services from a clean copy of this commit (git archive),
                           not the working tree: what the report's commit label then names
  --repo <dir>             run the services from this checkout (this repo)
  --commit <label>         label the report with this instead of git rev-parse
  --no-faults              a baseline run without kills
  --no-schedule            no schedule during the run (by default one fires an email every
                           second, through POST /v1/schedules, and each tick is counted)
  --rate-limit <per s>     PUT /v1/queues/email/limits {ratePerSec} for the whole run
  --keep                   keep the temp dir (service logs, the sink's log)
  --json <file>            append the facts and summary as one JSON line
  --row <file>             append the docs/reliability.md table row
  --report <file>          no run: print the report and table row of every run saved with --json`;

function fail(message: string): never {
  console.error(`${message}\n\n${usage}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    broker: { type: 'string' },
    n: { type: 'string', default: '300' },
    rate: { type: 'string', default: '12' },
    concurrency: { type: 'string', default: '16' },
    'smtp-delay-ms': { type: 'string', default: '400' },
    'lease-ms': { type: 'string', default: '3000' },
    'worker-concurrency': { type: 'string', default: '4' },
    'settle-s': { type: 'string', default: '60' },
    'request-timeout-ms': { type: 'string', default: '10000' },
    'drain-timeout-ms': { type: 'string', default: '10000' },
    'state-url': { type: 'string' },
    'redis-cluster': { type: 'boolean', default: false },
    repo: { type: 'string' },
    rev: { type: 'string' },
    commit: { type: 'string' },
    'no-faults': { type: 'boolean', default: false },
    'no-schedule': { type: 'boolean', default: false },
    'rate-limit': { type: 'string' },
    keep: { type: 'boolean', default: false },
    json: { type: 'string' },
    row: { type: 'string' },
    report: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}
if (values.report) {
  // Re-count saved runs with this report.ts (a new metric over old facts, or a table for the docs).
  const rows: string[] = [];
  for (const line of readFileSync(values.report, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const { facts } = JSON.parse(line) as { facts: RunFacts };
    const summary = summarize(facts);
    console.log(formatReport(facts, summary));
    rows.push(tableRow(facts, summary));
  }
  console.log(`\n${tableHeader()}\n${rows.join('\n')}`);
  process.exit(0);
}
if (!values.broker || !(BROKERS as readonly string[]).includes(values.broker)) {
  fail(`--broker must be one of ${BROKERS.join(', ')}`);
}
if (values['redis-cluster'] && values.broker !== 'redis-reliable' && values.broker !== 'redis-streams') {
  fail('--redis-cluster goes with --broker redis-reliable or redis-streams');
}

function int(name: keyof typeof values, min: number, max: number): number {
  const raw = values[name] as string;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max)
    fail(`--${name} must be an integer ${min}..${max}`);
  return value;
}

const here = dirname(fileURLToPath(import.meta.url));
const thisRepo = join(here, '../../..');
const snapshot = values.rev ? snapshotOf(thisRepo, values.rev) : undefined;
const options: ChaosOptions = {
  broker: values.broker as BrokerName,
  n: int('n', 1, 100_000),
  ratePerS: int('rate', 1, 10_000),
  concurrency: int('concurrency', 1, 256),
  smtpDelayMs: int('smtp-delay-ms', 0, 120_000),
  leaseMs: int('lease-ms', 500, 600_000),
  workerConcurrency: int('worker-concurrency', 1, 256),
  settleS: int('settle-s', 0, 3_600),
  requestTimeoutMs: int('request-timeout-ms', 100, 600_000),
  drainTimeoutMs: int('drain-timeout-ms', 100, 600_000),
  ...(values['state-url'] ? { stateUrl: values['state-url'] } : {}),
  repoRoot: snapshot?.root ?? (values.repo ? resolve(values.repo) : thisRepo),
  keep: values.keep ?? false,
  noFaults: values['no-faults'] ?? false,
  schedule: !values['no-schedule'],
  ...(values['rate-limit'] !== undefined ? { rateLimitPerS: int('rate-limit', 1, 100_000) } : {}),
  ...(values['redis-cluster'] ? { redisCluster: true } : {}),
};

const say = (line: string) => console.log(`[chaos] ${line}`);
let handle: ChaosHandle | undefined;
let aborting = false;

process.on('exit', () => {
  killAllChildren();
  handle?.emergencyStop();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (aborting) process.exit(130);
    aborting = true;
    say(`${signal}: stopping every process this run started`);
    const force = setTimeout(() => process.exit(130), 60_000);
    force.unref();
    Promise.resolve(handle?.abort())
      .catch(() => {})
      .finally(() => process.exit(130));
  });
}

try {
  const facts = await runChaos(options, say, (h) => {
    handle = h;
  });
  if (snapshot) {
    facts.commit = snapshot.commit;
    facts.notes.push(`services from a clean copy of ${snapshot.commit} (git archive)`);
    if (snapshot.lockDiffers)
      facts.notes.push(`its package-lock.json differs from the installed node_modules`);
  }
  if (values.commit) facts.commit = values.commit;
  const summary = summarize(facts);
  console.log(formatReport(facts, summary));
  if (values.json) appendFileSync(values.json, `${JSON.stringify({ summary, facts })}\n`);
  if (values.row) appendFileSync(values.row, `${tableRow(facts, summary)}\n`);
  process.exit(summary.verdict === 'fail' ? 1 : 0);
} catch (error) {
  console.error(`[chaos] run failed: ${(error as Error).stack ?? error}`);
  process.exit(3);
}
