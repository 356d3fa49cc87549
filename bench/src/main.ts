/**
 * npm run bench -- --broker <name> [--jobs N] [--concurrency C] [--batch B] [--runs R]
 *
 * Measures polyqueue on one registered broker (enqueue rate, processing rate with a no-op
 * handler, enqueue-to-start latency) and, in the same run, the broker's raw baselines; prints
 * a markdown table of medians over R runs with each baseline's ratio. Broker variables
 * (REDIS_URL, SQLITE_PATH, ...) come from the environment as for the apps.
 */
import { parseArgs } from 'node:util';
import { brokerNames } from '@polyqueue/brokers';
import { baselines } from './baselines/index';
import { frameworkLatency, frameworkRates } from './framework';
import { fmt, median, type Rates } from './measure';

const { values } = parseArgs({
  options: {
    broker: { type: 'string', default: process.env.BROKER ?? 'sqlite' },
    jobs: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '32' },
    batch: { type: 'string', default: '100' },
    runs: { type: 'string', default: '3' },
    latency: { type: 'string', default: '300' },
  },
});

function positive(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number (got ${JSON.stringify(raw)})`);
  return n;
}

const broker = values.broker!;
if (!brokerNames.includes(broker)) throw new Error(`--broker: unknown "${broker}"; valid: ${brokerNames.join(', ')}`);
const options = {
  env: { ...process.env, BROKER: broker },
  jobs: positive('jobs', values.jobs!),
  concurrency: positive('concurrency', values.concurrency!),
  batch: positive('batch', values.batch!),
};
const runs = positive('runs', values.runs!);

const rows: { label: string; samples: Rates[] }[] = [{ label: `polyqueue ${broker}`, samples: [] }];
for (const b of baselines[broker] ?? []) rows.push({ label: b.label, samples: [] });

// Interleave the contenders run by run, so drift on a noisy machine hits them alike.
for (let run = 0; run < runs; run++) {
  rows[0]!.samples.push(await frameworkRates(options));
  for (const [i, b] of (baselines[broker] ?? []).entries()) rows[i + 1]!.samples.push(await b.run(options));
  process.stderr.write(`run ${run + 1}/${runs} done\n`);
}
const latency = await frameworkLatency(options, positive('latency', values.latency!));

const med = rows.map((r) => ({
  label: r.label,
  enqueue: median(r.samples.map((s) => s.enqueuePerSec)),
  process: median(r.samples.map((s) => s.processPerSec)),
}));
const ours = med[0]!;
console.log(`\nbroker ${broker}: ${options.jobs} jobs, concurrency ${options.concurrency}, publish batch ${options.batch}, median of ${runs} runs; node ${process.version}\n`);
console.log('| contender | enqueue jobs/s | process jobs/s | polyqueue ÷ this (enqueue) | polyqueue ÷ this (process) |');
console.log('|---|---:|---:|---:|---:|');
for (const r of med) {
  const ratio = (a: number, b: number) => (r === ours ? '—' : `${fmt(a / b, 2)}x`);
  console.log(`| ${r.label} | ${fmt(r.enqueue)} | ${fmt(r.process)} | ${ratio(ours.enqueue, r.enqueue)} | ${ratio(ours.process, r.process)} |`);
}
console.log(`\nenqueue-to-start latency (polyqueue ${broker}, one job at a time): p50 ${fmt(latency.p50Ms, 1)} ms, p99 ${fmt(latency.p99Ms, 1)} ms`);
