/**
 * npm run bench -- [--scenario queue|images|runtime|api] --broker <name> [--jobs N] [--concurrency C]
 *                  [--batch B] [--runs R] [--latency L] [--images I] [--json FILE] [--state URL]
 *
 * queue (default): polyqueue on one registered broker (enqueue rate, processing rate with a
 * no-op handler, enqueue-to-start latency) and, in the same run, the broker's raw baselines
 * (same commands, and the best raw loop); --json FILE also writes the medians as JSON.
 * e2e: the API and email worker as child processes, POSTs to the outbox (e2e.ts); drain: the
 * same emails queued first, then the email worker alone timed draining them.
 * images: thumbnails/s from a bare sharp loop versus the image worker's handler behind the
 * broker. Prints markdown tables of medians over R runs, contenders interleaved run by run so
 * drift on a noisy machine hits them alike. Broker variables (REDIS_URL, SQLITE_PATH, ...)
 * come from the environment as for the apps.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { brokerNames, createStateStore } from '@polyqueue/brokers';
import { apiAcceptScenario } from './api-accept';
import { baselines, type ContenderKind } from './baselines/index';
import { claimIn, driverOnlyRates, frameworkLatency, frameworkRates } from './framework';
import { configureSharp, imageBenchRoot, makeTestImages, queuedThumbnails, rawSharpLoop } from './images';
import { fmt, median, type Rates } from './measure';
import { runtimeContenders } from './runtime-cost';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'queue' },
    broker: { type: 'string', default: process.env.BROKER ?? 'sqlite' },
    jobs: { type: 'string', default: '10000' },
    concurrency: { type: 'string' },
    batch: { type: 'string', default: '100' },
    runs: { type: 'string', default: '3' },
    latency: { type: 'string', default: '300' },
    images: { type: 'string', default: '40' },
    json: { type: 'string' },
    state: { type: 'string' },
  },
});

function positive(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive whole number (got ${JSON.stringify(raw)})`);
  return n;
}

/**
 * A full collection before each timed contender (the bench script runs node with --expose-gc),
 * so none pays in its timing for the garbage the one before it left.
 */
const collectGarbage: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {});

const broker = values.broker!;
if (!brokerNames.includes(broker))
  throw new Error(`--broker: unknown "${broker}"; valid: ${brokerNames.join(', ')}`);
const env = { ...process.env, BROKER: broker };
const runs = positive('runs', values.runs!);

if (values.scenario === 'queue') await queueScenario();
else if (values.scenario === 'images') await imageScenario();
else if (values.scenario === 'runtime') await runtimeScenario();
else if (values.scenario === 'startup') await (await import('./startup')).startupScenario({ runs });
else if (values.scenario === 'e2e' || values.scenario === 'drain')
  await (await import('./e2e')).e2eScenario({
    broker,
    jobs: positive('jobs', process.argv.includes('--jobs') ? values.jobs! : '5000'),
    concurrency: positive('concurrency', values.concurrency ?? '32'),
    drain: values.scenario === 'drain',
  });
else if (values.scenario === 'api')
  await apiAcceptScenario({
    runs,
    concurrency: positive('concurrency', values.concurrency ?? '32'),
    seconds: 5,
  });
else
  throw new Error(
    `--scenario: unknown "${values.scenario}"; valid: queue, e2e, drain, api, images, runtime, startup`,
  );

/**
 * Runs every contender `runs` times, interleaved run by run so drift on a noisy machine hits them
 * alike, after one untimed warm-up each (module loading, connections, JIT) so the first contender
 * is not the one that pays for it. Returns each contender's samples, in run order.
 */
async function interleaved<O, T>(
  contenders: readonly { run(options: O): Promise<T> }[],
  options: O,
  warmUp: O,
): Promise<T[][]> {
  const samples = contenders.map((): T[] => []);
  for (const c of contenders) await c.run(warmUp);
  for (let run = 0; run < runs; run++) {
    for (const [i, c] of contenders.entries()) {
      collectGarbage();
      samples[i]!.push(await c.run(options));
    }
    process.stderr.write(`run ${run + 1}/${runs} done\n`);
  }
  return samples;
}

async function queueScenario(): Promise<void> {
  const options = {
    env,
    jobs: positive('jobs', values.jobs!),
    concurrency: positive('concurrency', values.concurrency ?? '32'),
    batch: positive('batch', values.batch!),
  };
  // --state: the runtime row claims and marks done in a real state store (sqlite:, redis://,
  // mysql://), as a deployment does; the other rows have no such store to pay for.
  const state = values.state ? await createStateStore(values.state, process.env) : undefined;
  if (state) claimIn(state);
  const runtimeLabel = state
    ? `polyqueue ${broker} (worker runtime, claims in ${new URL(values.state!).protocol.replace(':', '')} state store)`
    : `polyqueue ${broker} (worker runtime)`;
  const contenders: { label: string; kind: ContenderKind; run: typeof frameworkRates }[] = [
    { label: runtimeLabel, kind: 'polyqueue', run: frameworkRates },
    { label: `polyqueue ${broker} driver only (consume + ack)`, kind: 'driver', run: driverOnlyRates },
    ...(baselines[broker] ?? []),
  ];
  const samples = await interleaved(contenders, options, { ...options, jobs: Math.min(options.jobs, 1_000) });
  const latency = await frameworkLatency(options, positive('latency', values.latency!));

  const med = contenders.map((c, i) => ({
    label: c.label,
    kind: c.kind,
    enqueue: median(samples[i]!.map((s) => s.enqueuePerSec)),
    process: median(samples[i]!.map((s) => s.processPerSec)),
  }));
  const [ours, driver] = [med[0]!, med[1]!];
  console.log(
    `\nbroker ${broker}: ${options.jobs} jobs, concurrency ${options.concurrency}, publish batch ${options.batch}, median of ${runs} runs; node ${process.version}\n`,
  );
  // The last column: each row against the best raw loop, the ceiling the broker's client allows.
  const best = med.find((r) => r.kind === 'raw-best');
  console.log(
    '| contender | enqueue jobs/s | process jobs/s | polyqueue ÷ this: enqueue | process (driver only) | this ÷ best raw: enqueue, process |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${fmt(a / b, 2)}x` : 'n/a');
  for (const r of med) {
    const own = r === ours || r === driver;
    const enqueue = own ? '—' : ratio(ours.enqueue, r.enqueue);
    const process = own ? '—' : `${ratio(ours.process, r.process)} (${ratio(driver.process, r.process)})`;
    const vsBest =
      !best || r === best ? '—' : `${ratio(r.enqueue, best.enqueue)}, ${ratio(r.process, best.process)}`;
    console.log(
      `| ${r.label} | ${fmt(r.enqueue)} | ${fmt(r.process)} | ${enqueue} | ${process} | ${vsBest} |`,
    );
  }
  if (values.json) {
    const report = {
      contenders: med.map((r) => ({
        name: r.label,
        kind: r.kind,
        enqueuePerSec: Number.isFinite(r.enqueue) ? r.enqueue : null,
        processPerSec: Number.isFinite(r.process) ? r.process : null,
      })),
      broker,
      jobs: options.jobs,
      runs,
      node: process.version,
      date: new Date().toISOString(),
    };
    writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  }
  // Runs are interleaved, so run k of two contenders saw the same machine: their ratio per run
  // shows how far the noise moves the medians' ratio.
  for (const [i, c] of contenders.entries()) {
    if (i < 2) continue;
    const perRun = (what: string, pick: (r: Rates) => number) => {
      const ratios = samples[0]!
        .map((s, k) => pick(s) / pick(samples[i]![k]!))
        .filter(Number.isFinite)
        .sort((x, y) => x - y);
      return ratios.length > 0 ? [`${what} ${fmt(ratios[0]!, 2)}–${fmt(ratios.at(-1)!, 2)}x`] : [];
    };
    const ranges = [
      ...perRun('enqueue', (r) => r.enqueuePerSec),
      ...perRun('process', (r) => r.processPerSec),
    ];
    console.log(`\nper run vs ${c.label}: ${ranges.join(', ')}`);
  }
  console.log(
    `\nenqueue-to-start latency (polyqueue ${broker}, one job at a time): p50 ${fmt(latency.p50Ms, 1)} ms, p99 ${fmt(latency.p99Ms, 1)} ms`,
  );
  await state?.close?.();
}

async function imageScenario(): Promise<void> {
  const concurrency = positive('concurrency', values.concurrency ?? '2');
  const count = positive('images', values.images!);
  const sharpThreads = configureSharp({ concurrency: 1 }).concurrency;
  const root = imageBenchRoot();
  const paths = await makeTestImages(root, count);
  const raw: number[] = [];
  const queued: number[] = [];
  for (let run = 0; run < runs; run++) {
    raw.push(await rawSharpLoop(root, paths, concurrency));
    queued.push(await queuedThumbnails(root, paths, { env, images: count, concurrency }));
    process.stderr.write(`run ${run + 1}/${runs} done\n`);
  }
  const r = median(raw);
  const q = median(queued);
  console.log(
    `\nimages: ${count} JPEGs 1600x1200 -> 256x256 WebP thumbnail, concurrency ${concurrency}, sharp threads ${sharpThreads}, broker ${broker}, median of ${runs} runs; node ${process.version}\n`,
  );
  console.log('| contender | thumbnails/s | queued ÷ this |');
  console.log('|---|---:|---:|');
  console.log(`| image worker via polyqueue ${broker} | ${fmt(q, 1)} | — |`);
  console.log(`| raw sharp loop (makeVariants) | ${fmt(r, 1)} | ${fmt(q / r, 2)}x |`);
}

async function runtimeScenario(): Promise<void> {
  const options = {
    jobs: positive('jobs', values.jobs!),
    concurrency: positive('concurrency', values.concurrency ?? '32'),
  };
  const samples = await interleaved(runtimeContenders, options, {
    ...options,
    jobs: Math.min(options.jobs, 10_000),
  });
  const floor = median(samples[0]!);
  console.log(
    `\nruntime: ${options.jobs} jobs from memory (no broker), concurrency ${options.concurrency}, median of ${runs} runs; node ${process.version}\n`,
  );
  console.log('| contender | µs per job | jobs/s | µs over the first row |');
  console.log('|---|---:|---:|---:|');
  for (const [i, c] of runtimeContenders.entries()) {
    const us = median(samples[i]!);
    const over = i === 0 ? '—' : fmt(us - floor, 2);
    console.log(`| ${c.label} | ${fmt(us, 2)} | ${fmt(1e6 / us)} | ${over} |`);
  }
}
