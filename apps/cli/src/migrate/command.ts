/**
 * `polyqueue migrate --from mysql://user:pass@host:3306/db/legacy_table --to <BROKER>`
 *
 * Options: --queue <name> (every row to one queue; default: the queue of each job type),
 * --chunk <rows read per query> (500), --batch <messages per publish> (100), --dry-run, --json.
 * The target broker's own variables (SQLITE_PATH, REDIS_URL, ...) come from the environment.
 * Progress goes to stderr (a bar on a terminal, a line per batch otherwise); the summary and the
 * reconciliation go to stdout. Exit code: 0 reconciled, 2 reconciled but invalid rows were
 * left in the legacy table, 1 anything else.
 */
import { parseArgs } from 'node:util';
import { brokerNames, createBrokerFromEnv } from '@polyqueue/brokers';
import type { Broker } from '@polyqueue/core';
import cliProgress from 'cli-progress';
import { LegacyTable, parseSource } from './legacy-table';
import { type MigrateProgress, type MigrateSummary, runMigration } from './migrate';

export const MIGRATE_USAGE = `usage: polyqueue migrate --from mysql://user:pass@host:3306/database/table --to <BROKER>
       [--queue <name>] [--chunk 500] [--batch 100] [--dry-run] [--json]

Moves every row of a legacy queue table (id, job_type, payload, created_at) into BROKER
(${brokerNames.join(', ')}). Job ids are legacy-<table>-<id>, so running it again, after an
interruption or not, publishes only rows not yet recorded as moved. Invalid rows are reported
and left in the legacy table. The target's variables (SQLITE_PATH, REDIS_URL, ...) come from the environment.`;

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
      chunk: { type: 'string', default: '500' },
      batch: { type: 'string', default: '100' },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
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

  const legacy = await LegacyTable.open(source);
  let broker: Broker | undefined;
  const progress = progressReporter();
  try {
    if (!dryRun) broker = await createBrokerFromEnv({ ...env, BROKER: values.to });
    const summary = await runMigration(legacy, broker, {
      target: values.to,
      queue: values.queue,
      chunkSize: positive('chunk', values.chunk),
      batchSize: positive('batch', values.batch),
      dryRun,
      onProgress: progress.update,
    });
    progress.stop();
    if (values.json) console.log(JSON.stringify(summary));
    else printSummary(summary);
    if (!summary.reconciled) return 1;
    return summary.invalid > 0 ? 2 : 0;
  } finally {
    progress.stop();
    await broker?.close().catch(() => {});
    await legacy.close().catch(() => {});
  }
}

/** A bar on a terminal; elsewhere (CI, a pipe, a test) one plain line per update. */
function progressReporter() {
  let bar: cliProgress.SingleBar | undefined;
  let stopped = false;
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
                'migrating [{bar}] {value}/{total} rows | published {published} | already moved {moved} | invalid {invalid}',
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.total, 0, { published: 0, moved: 0, invalid: 0 });
        }
        bar.setTotal(Math.max(p.total, done));
        bar.update(done, { published: p.published, moved: p.alreadyMoved, invalid: p.invalid });
      } else {
        process.stderr.write(
          `progress ${done}/${p.total} rows: published ${p.published}, already moved ${p.alreadyMoved}, invalid ${p.invalid}\n`,
        );
      }
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
  console.log(`${s.dryRun ? 'dry run: ' : ''}migrated ${s.source} -> ${s.target}`);
  console.log(`  rows read:      ${s.read}`);
  console.log(`  ${`${verb}:`.padEnd(16)}${s.published}`);
  console.log(`  already moved:  ${s.alreadyMoved}`);
  console.log(`  invalid (left in the legacy table): ${s.invalid}`);
  for (const row of s.invalidRows.slice(0, 50)) console.log(`    row ${row.rowId}: ${row.reason}`);
  if (s.invalidRows.length > 50)
    console.log(`    ... and ${s.invalidRows.length - 50} more (use --json for all)`);
  console.log(`  recorded as moved to ${s.target}: ${s.recordedMoved}`);
  console.log(
    s.reconciled
      ? `reconciled: rows read ${s.read} = ${verb} ${s.published} + already moved ${s.alreadyMoved} + invalid ${s.invalid}`
      : `NOT reconciled: rows read ${s.read} != ${s.published} + ${s.alreadyMoved} + ${s.invalid}`,
  );
}
