/**
 * `polyqueue schedules [--json]`: the schedules every API replica fires (STATE_URL's store, the
 * one GET /v1/schedules reads), each with its timing, job type and next fire time.
 */
import { parseArgs } from 'node:util';
import { createScheduleStore } from '@polyqueue/brokers';
import { nextFireTime } from '@polyqueue/core';
import { UsageError } from '../migrate/command';

type Env = Record<string, string | undefined>;
type Print = (line: string) => void;

/** The apps' default (app-runtime's config), so the CLI reads the schedules the API reads. */
const DEFAULT_STATE_URL = 'sqlite:./var/state.db';

export const SCHEDULES_USAGE = `usage: polyqueue schedules [--json]   the schedules (STATE_URL), with their next fire times
(create and delete them with POST /v1/schedules and DELETE /v1/schedules/:name, or SCHEDULES_FILE)`;

export async function schedulesCommand(
  args: string[],
  env: Env,
  print: Print = console.log,
  now: Date = new Date(),
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false } },
  });
  if (positionals.length > 0) throw new UsageError(`schedules: no arguments expected\n\n${SCHEDULES_USAGE}`);
  const store = await createScheduleStore(env.STATE_URL ?? DEFAULT_STATE_URL, env);
  try {
    const rows = (await store.list()).map((s) => ({
      ...s,
      catchUp: s.catchUp ?? true,
      nextFireAt: nextFireTime(s, now),
    }));
    if (values.json) {
      print(JSON.stringify(rows));
      return 0;
    }
    if (rows.length === 0) {
      print('no schedules');
      return 0;
    }
    const table = [
      ['NAME', 'TIMING', 'JOB', 'CATCH-UP', 'NEXT FIRE'],
      ...rows.map((s) => [
        s.name,
        s.cron !== undefined ? `cron ${s.cron} ${s.timezone ?? 'UTC'}` : `every ${s.everyMs} ms`,
        s.job.type,
        s.catchUp ? 'yes' : 'no',
        s.nextFireAt,
      ]),
    ];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of table)
      print(
        row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      );
    return 0;
  } finally {
    await store.close?.();
  }
}
