#!/usr/bin/env -S node --import tsx
/**
 * The `polyqueue` command. Subcommands:
 *   stats     queue depth by state (queues/commands.ts)
 *   dead      list, redrive or purge dead letters (queues/commands.ts)
 *   pause     stop every worker fetching from a queue; resume: fetch again (queues/pause.ts)
 *   limits    show or change a queue's cluster-wide rate and concurrency limits (queues/limits.ts)
 *   cancel    cancel a job by id, as DELETE /v1/jobs/:id does (jobs/cancel.ts)
 *   jobs      retry or cancel every job a filter matches, as POST /v1/jobs/bulk does (jobs/bulk.ts)
 *   schedules list the schedules with their next fire times (jobs/schedules.ts)
 *   migrate   move a legacy queue table (Q4M style) into any broker (see migrate/command.ts)
 */
import { ConfigError } from '@polyqueue/core';
import { JOBS_USAGE, jobsCommand } from './jobs/bulk';
import { CANCEL_USAGE, cancelCommand } from './jobs/cancel';
import { SCHEDULES_USAGE, schedulesCommand } from './jobs/schedules';
import { MIGRATE_USAGE, migrateCommand, UsageError } from './migrate/command';
import { deadCommand, QUEUES_USAGE, statsCommand } from './queues/commands';
import { LIMITS_USAGE, limitsCommand } from './queues/limits';
import { PAUSE_USAGE, pauseCommand } from './queues/pause';

const USAGE = `usage: polyqueue <command> [options]

commands:
  stats     ready / in flight / delayed / dead per queue, and whether it is paused
  pause     every worker stops fetching from a queue; the jobs in flight finish
  resume    every worker fetches from a paused queue again
  limits    a queue's rate and concurrency limits, shared by every worker
  dead      list, redrive or purge a queue's dead letters
  cancel    cancel a job: it never runs, or its running handler is aborted
  jobs      retry or cancel every job a filter matches (--dry-run counts them)
  schedules the recurring jobs and when each fires next
  migrate   move the rows of a legacy MySQL queue table into any broker, exactly once per row id

The broker is the one BROKER and its variables select (default: sqlite, ./var/polyqueue.db).

${QUEUES_USAGE}

${PAUSE_USAGE}

${LIMITS_USAGE}

${CANCEL_USAGE}

${JOBS_USAGE}

${SCHEDULES_USAGE}

${MIGRATE_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'migrate':
      return migrateCommand(rest, process.env);
    case 'stats':
      return statsCommand(rest, process.env);
    case 'dead':
      return deadCommand(rest, process.env);
    case 'pause':
    case 'resume':
      return pauseCommand(command, rest, process.env);
    case 'limits':
      return limitsCommand(rest, process.env);
    case 'cancel':
      return cancelCommand(rest, process.env);
    case 'jobs':
      return jobsCommand(rest, process.env);
    case 'schedules':
      return schedulesCommand(rest, process.env);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 1 : 0;
    default:
      console.error(`polyqueue: unknown command "${command}"\n\n${USAGE}`);
      return 1;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const known =
    error instanceof UsageError ||
    error instanceof ConfigError ||
    (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
  console.error(`polyqueue: ${(error as Error).message}`);
  if (!known && process.env.DEBUG) console.error(error);
  process.exitCode = 1;
}
