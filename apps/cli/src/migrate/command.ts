/**
 * `polyqueue migrate --from mysql://user:pass@host:3306/db/legacy_table --to <BROKER>`
 *
 * Options: --queue <name> (every row to one queue; default: the queue of each job type),
 * --map legacy_type=job_type (repeatable), --transform <module> (reshapes payloads),
 * --chunk <rows read per query> (500), --batch <messages per publish> (100), --dry-run, --json;
 * --follow (keep moving new rows until SIGTERM/SIGINT), --until-empty (stop at the first poll
 * that finds nothing left), --poll <ms> (200), --gap-wait <ms> (10000), --metrics-port <port>.
 * The target broker's own variables (SQLITE_PATH, REDIS_URL, ...) come from the environment.
 * Progress goes to stderr (a bar on a terminal, a line per batch otherwise); the summary and the
 * reconciliation go to stdout. Exit code: 0 reconciled, 2 reconciled but invalid rows were
 * left in the legacy table, 1 anything else (with --until-empty: also rows left unmoved that
 * are not invalid, i.e. a producer still writing).
 */
import { parseArgs } from 'node:util';
import { brokerNames, createBrokerFromEnv } from '@polyqueue/brokers';
import type { Broker } from '@polyqueue/core';
import cliProgress from 'cli-progress';
import { loadTransform, parseTypeMap } from './convert';
import { LegacyTable, parseSource } from './legacy-table';
import { createMigrateMetrics, serveMetrics } from './metrics';
import { type MigrateMode, type MigrateProgress, type MigrateSummary, runMigration } from './migrate';

export const MIGRATE_USAGE = `usage: polyqueue migrate --from mysql://user:pass@host:3306/database/table --to <BROKER>
       [--queue <name>] [--map legacy_type=job_type ...] [--transform ./module.mjs]
       [--chunk 500] [--batch 100] [--dry-run] [--json]
       [--follow | --until-empty] [--poll 200] [--gap-wait 10000] [--metrics-port <port>]

Moves every row of a legacy queue table (id, job_type, payload, created_at) into BROKER
(${brokerNames.join(', ')}). Job ids are legacy-<table>-<id>, so running it again, after an
interruption or not, publishes only rows not yet recorded as moved. Invalid rows are reported
and left in the legacy table. The target's variables (SQLITE_PATH, REDIS_URL, ...) come from the environment.

  --map a=b        read legacy job_type a as job type b (repeatable), e.g. --map resize=process_image
  --transform m    a module exporting a function ({id, legacyType, type, payload, payloadText,
                   createdAt}) => {type, payload}, for payloads shaped differently
  --follow         after the backlog, keep moving rows as producers insert them, polling every
                   --poll ms, until SIGTERM or SIGINT (the chunk in hand is finished first)
  --until-empty    the last drain, after every producer has switched: stop at the first poll that
                   finds nothing left to move, and fail if the table still holds unmoved valid rows
  --gap-wait ms    how long an id skipped by a still-open insert is waited for while following
  --metrics-port p serve Prometheus metrics on :p/metrics while running (0: any free port)`;

function positive(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a positive whole number (got ${JSON.stringify(raw)})`);
  return n;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export async function migrateCommand(
  args: string[],
  env: Record<string, string | undefined>,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      queue: { type: 'string' },
      map: { type: 'string', multiple: true, default: [] },
      transform: { type: 'string' },
      chunk: { type: 'string', default: '500' },
      batch: { type: 'string', default: '100' },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      follow: { type: 'boolean', default: false },
      'until-empty': { type: 'boolean', default: false },
      poll: { type: 'string', default: '200' },
      'gap-wait': { type: 'string', default: '10000' },
      'metrics-port': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(MIGRATE_USAGE);
    return 0;
  }
  if (!values.from) throw new UsageError('--from is required');
  if (!values.to) throw new UsageError('--to is required');
  if (!brokerNames.includes(values.to))
    throw new UsageError(`--to: unknown broker "${values.to}"; valid: ${brokerNames.join(', ')}`);
  const source = parseSource(values.from);
  const dryRun = values['dry-run'];
  const mode: MigrateMode = values['until-empty'] ? 'until-empty' : values.follow ? 'follow' : 'once';
  if (dryRun && mode !== 'once')
    throw new UsageError(
      '--dry-run reads the table once; it cannot be combined with --follow or --until-empty',
    );
  let typeMap: Map<string, string>;
  try {
    typeMap = parseTypeMap(values.map, values.queue !== undefined);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const chunkSize = positive('chunk', values.chunk);
  const batchSize = positive('batch', values.batch);
  const pollMs = positive('poll', values.poll);
  const gapWaitMs = nonNegative('gap-wait', values['gap-wait']);
  const metricsPort = values['metrics-port'] === undefined ? undefined : port(values['metrics-port']);
  const transform = values.transform === undefined ? undefined : await loadTransform(values.transform);

  // SIGTERM / SIGINT: finish the chunk in hand (published and recorded), then summarise; a
  // second signal exits at once (nothing is lost: unrecorded rows move on the next run).
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`${signal}: stopping after the rows in hand\n`);
    controller.abort();
  };

  const legacy = await LegacyTable.open(source);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let broker: Broker | undefined;
  let metricsServer: Awaited<ReturnType<typeof serveMetrics>>['server'] | undefined;
  const progress = progressReporter(mode);
  try {
    // Two runs at once would each publish what the other has not yet recorded.
    if (!dryRun) await legacy.lockRun(values.to, 10);
    const metrics = createMigrateMetrics({ source: source.key, target: values.to });
    if (metricsPort !== undefined) {
      const served = await serveMetrics(metrics.registry, metricsPort);
      metricsServer = served.server;
      process.stderr.write(`metrics on http://127.0.0.1:${served.port}/metrics\n`);
    }
    if (!dryRun) broker = await createBrokerFromEnv({ ...env, BROKER: values.to });
    const summary = await runMigration(legacy, broker, {
      target: values.to,
      queue: values.queue,
      typeMap,
      transform,
      chunkSize,
      batchSize,
      dryRun,
      mode,
      pollMs,
      gapWaitMs,
      signal: controller.signal,
      onProgress: (p) => {
        metrics.update(p);
        progress.update(p);
      },
    });
    progress.stop();
    if (values.json) console.log(JSON.stringify(summary));
    else printSummary(summary);
    if (!summary.reconciled) return 1;
    if (mode === 'until-empty' && summary.stoppedBy === 'empty' && summary.unmoved !== summary.invalid)
      return 1;
    return summary.invalid > 0 ? 2 : 0;
  } finally {
    progress.stop();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    metricsServer?.close();
    await broker?.close().catch(() => {});
    await legacy.close().catch(() => {});
  }
}

function nonNegative(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(
      `--${name} must be a whole number of milliseconds, 0 or more (got ${JSON.stringify(raw)})`,
    );
  return n;
}

function port(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new UsageError(`--metrics-port must be a port number 0..65535 (got ${JSON.stringify(raw)})`);
  return n;
}

/**
 * A bar on a terminal; elsewhere (CI, a pipe, a test) one plain line per published batch and,
 * while following an idle table, one line when caught up and one every 10 s.
 */
function progressReporter(mode: MigrateMode) {
  let bar: cliProgress.SingleBar | undefined;
  let stopped = false;
  let last = { published: -1, phase: '', gaps: 0, at: 0 };
  const lag = (p: MigrateProgress) => (p.lagSeconds === null ? 'n/a' : `${p.lagSeconds.toFixed(1)}s`);
  return {
    update(p: MigrateProgress) {
      if (stopped) return;
      const done = p.read;
      if (process.stderr.isTTY) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              stream: process.stderr,
              format:
                mode === 'once'
                  ? 'migrating [{bar}] {value}/{total} rows | published {published} | already moved {moved} | invalid {invalid}'
                  : '{phase} | read {value} | published {published} | already moved {moved} | invalid {invalid} | backlog {backlog} | lag {lag}',
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.total, 0, {
            published: 0,
            moved: 0,
            invalid: 0,
            phase: p.phase,
            backlog: p.backlog,
            lag: 'n/a',
          });
        }
        bar.setTotal(Math.max(p.total, done));
        bar.update(done, {
          published: p.published,
          moved: p.alreadyMoved,
          invalid: p.invalid,
          phase: p.phase,
          backlog: p.backlog,
          lag: lag(p),
        });
        return;
      }
      const now = Date.now();
      const changed = p.published !== last.published || p.phase !== last.phase || p.pendingGaps !== last.gaps;
      if (!changed && now - last.at < 10_000) return;
      last = { published: p.published, phase: p.phase, gaps: p.pendingGaps, at: now };
      const counts = `published ${p.published}, already moved ${p.alreadyMoved}, invalid ${p.invalid}`;
      process.stderr.write(
        mode === 'once'
          ? `progress ${done}/${p.total} rows: ${counts}\n`
          : `progress ${done} rows read: ${counts}, backlog ${p.backlog}, lag ${lag(p)}, gaps ${p.pendingGaps}, ${p.phase}\n`,
      );
    },
    stop() {
      stopped = true;
      bar?.stop();
      bar = undefined;
    },
  };
}

function printSummary(s: MigrateSummary): void {
  const verb = s.dryRun ? 'would publish' : 'published';
  const how = s.mode === 'once' ? '' : ` (${s.mode}, stopped by ${s.stoppedBy})`;
  console.log(`${s.dryRun ? 'dry run: ' : ''}migrated ${s.source} -> ${s.target}${how}`);
  console.log(`  rows read:      ${s.read}`);
  console.log(`  ${`${verb}:`.padEnd(16)}${s.published}`);
  console.log(`  already moved:  ${s.alreadyMoved}`);
  console.log(`  invalid (left in the legacy table): ${s.invalid}`);
  for (const row of s.invalidRows.slice(0, 50)) console.log(`    row ${row.rowId}: ${row.reason}`);
  if (s.invalidRows.length > 50)
    console.log(`    ... and ${s.invalidRows.length - 50} more (use --json for all)`);
  console.log(`  recorded as moved to ${s.target}: ${s.recordedMoved}`);
  if (s.unmoved !== null) console.log(`  rows in the legacy table not moved: ${s.unmoved}`);
  if (s.mode !== 'once' && s.gapsExpired > 0)
    console.log(
      `  skipped ids given up on after --gap-wait: ${s.gapsExpired} (a later run moves any that commit)`,
    );
  console.log(
    s.reconciled
      ? `reconciled: rows read ${s.read} = ${verb} ${s.published} + already moved ${s.alreadyMoved} + invalid ${s.invalid}`
      : `NOT reconciled: rows read ${s.read} != ${s.published} + ${s.alreadyMoved} + ${s.invalid}`,
  );
  if (s.mode === 'until-empty' && s.stoppedBy === 'empty') {
    console.log(
      s.unmoved === s.invalid
        ? `drained: every row of ${s.source} is moved except the ${s.invalid} invalid row(s)`
        : `NOT drained: ${s.unmoved} row(s) not moved but only ${s.invalid} invalid; a producer is still writing to ${s.source}? run --until-empty again once it has switched`,
    );
  }
}
