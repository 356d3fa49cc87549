/**
 * `polyqueue jobs retry|cancel --status dead --type send_email [--dry-run]`: what POST
 * /v1/jobs/bulk does, on the job records of the state store (STATE_URL) and the broker's dead
 * letters (BROKER, as for the apps). The filter is GET /v1/jobs's; one run acts on at most
 * 10,000 jobs (--limit lowers it) and says when more match. Exit code 1 when a job was skipped.
 */
import { parseArgs } from 'node:util';
import { createBrokerFromEnv, createStateStore } from '@polyqueue/brokers';
import {
  type BulkAction,
  bulkJobAction,
  type JobSearchFilter,
  type JobStatus,
  MAX_BULK_JOBS,
} from '@polyqueue/core';
import { UsageError } from '../migrate/command';

type Env = Record<string, string | undefined>;
type Print = (line: string) => void;

/** The apps' default (app-runtime's config), so the CLI reads the records the API writes. */
const DEFAULT_STATE_URL = 'sqlite:./var/state.db';
const STATUSES: readonly JobStatus[] = [
  'pending',
  'queued',
  'processing',
  'retrying',
  'succeeded',
  'dead',
  'cancelled',
];

export const JOBS_USAGE = `usage: polyqueue jobs (retry | cancel) [--status s] [--type t] [--queue q] [--q text] [--dry-run] [--limit n] [--json]
  every job the filter matches (as GET /v1/jobs: --q is a job id, an Idempotency-Key or a part of
  the last error), at most ${MAX_BULK_JOBS} a run; --dry-run only counts them. retry takes dead jobs
  back to their queue, cancel stops unfinished ones; the others are listed as skipped`;

export async function jobsCommand(
  args: string[],
  env: Env,
  print: Print = console.log,
  printError: Print = console.error,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      status: { type: 'string' },
      type: { type: 'string' },
      queue: { type: 'string' },
      q: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const [action, ...extra] = positionals;
  if ((action !== 'retry' && action !== 'cancel') || extra.length > 0)
    throw new UsageError(`jobs: expected retry or cancel\n\n${JOBS_USAGE}`);
  if (values.status !== undefined && !STATUSES.includes(values.status as JobStatus))
    throw new UsageError(
      `--status must be one of ${STATUSES.join(', ')} (got ${JSON.stringify(values.status)})`,
    );
  const filter: JobSearchFilter = {
    ...(values.status === undefined ? {} : { status: values.status as JobStatus }),
    ...(values.type === undefined ? {} : { type: values.type }),
    ...(values.queue === undefined ? {} : { queue: values.queue }),
    ...(values.q === undefined ? {} : { q: values.q }),
  };
  if (Object.keys(filter).length === 0)
    throw new UsageError(
      `jobs ${action}: name at least one of --status, --type, --queue, --q\n\n${JOBS_USAGE}`,
    );
  const limit = values.limit === undefined ? MAX_BULK_JOBS : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BULK_JOBS)
    throw new UsageError(
      `--limit must be a whole number from 1 to ${MAX_BULK_JOBS} (got ${JSON.stringify(values.limit)})`,
    );

  const dryRun = values['dry-run'];
  const state = await createStateStore(env.STATE_URL ?? DEFAULT_STATE_URL, env);
  try {
    // A dry run and a cancel need no broker; a retry redrives dead letters.
    const broker = action === 'retry' && !dryRun ? await createBrokerFromEnv(env) : undefined;
    try {
      const noBroker = {
        stats: () => Promise.reject(new Error('no broker')),
        deadLetters: () => {
          throw new Error('no broker');
        },
      };
      const outcome = await bulkJobAction(state, broker ?? noBroker, action as BulkAction, filter, {
        dryRun,
        bound: limit,
      });
      if (values.json) {
        print(JSON.stringify({ action, ...(dryRun ? { dryRun } : {}), ...outcome }));
        return outcome.skipped.length > 0 ? 1 : 0;
      }
      const more = outcome.capped ? ` (more match: run again for the next ${limit})` : '';
      const jobs = (n: number) => `${n} job${n === 1 ? '' : 's'}`;
      if (dryRun) {
        const which = action === 'retry' ? 'the dead ones' : 'the unfinished ones';
        print(
          `dry run: ${jobs(outcome.matched)} match${more}; ${action} would take ${which}; nothing changed`,
        );
        return 0;
      }
      const verb = action === 'retry' ? 'retried' : 'cancelled';
      print(`${verb} ${jobs(outcome.done)} of ${outcome.matched} matching${more}`);
      for (const s of outcome.skipped) printError(`skipped ${s.id}: ${s.reason}`);
      return outcome.skipped.length > 0 ? 1 : 0;
    } finally {
      await broker?.close();
    }
  } finally {
    await state.close();
  }
}
