/**
 * `polyqueue pause <queue>` and `polyqueue resume <queue>`: the cluster-wide pause flags in the
 * state store (STATE_URL, as for the apps), the same ones POST /v1/queues/:q/pause writes.
 * Every worker of the queue stops fetching within about half a second (its jobs in flight
 * finish), or fetches again.
 */
import { parseArgs } from 'node:util';
import { createQueueControls } from '@polyqueue/brokers';
import { errorMessage, type QueueControls } from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import { UsageError } from '../migrate/command';

type Env = Record<string, string | undefined>;
type Print = (line: string) => void;

/** The apps' default (app-runtime's config), so the CLI reads the flags the workers read. */
const DEFAULT_STATE_URL = 'sqlite:./var/state.db';

export const PAUSE_USAGE = `usage: polyqueue pause <queue> [--force]   every worker stops fetching from the queue; jobs in flight finish
       polyqueue resume <queue>           every worker fetches from the queue again
(the flags live in the state store, STATE_URL; --force pauses a queue not in the job catalogue: ${jobQueues.join(' ')})`;

export async function withControls<T>(env: Env, run: (controls: QueueControls) => Promise<T>): Promise<T> {
  const controls = await createQueueControls(env.STATE_URL ?? DEFAULT_STATE_URL, env);
  try {
    return await run(controls);
  } finally {
    await controls.close();
  }
}

/**
 * The paused queues, for `polyqueue stats`; undefined (with why, on stderr) when the state store
 * cannot be read, so the broker's counts still print.
 */
export async function pausedQueues(env: Env): Promise<ReadonlySet<string> | undefined> {
  try {
    return await withControls(env, (controls) => controls.paused());
  } catch (error) {
    console.error(`polyqueue: cannot read the pause flags from STATE_URL: ${errorMessage(error)}`);
    return undefined;
  }
}

export async function pauseCommand(
  action: 'pause' | 'resume',
  args: string[],
  env: Env,
  print: Print = console.log,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { force: { type: 'boolean', default: false } },
  });
  const [queue, ...extra] = positionals;
  if (!queue || extra.length > 0) throw new UsageError(`${action}: name one queue\n\n${PAUSE_USAGE}`);
  // A typo would pause nothing any worker reads; a queue of another catalogue needs --force.
  if (action === 'pause' && !values.force && !(jobQueues as readonly string[]).includes(queue))
    throw new UsageError(
      `pause: no queue "${queue}" in the job catalogue (${jobQueues.join(', ')}); add --force to pause it anyway`,
    );
  const changed = await withControls(env, (controls) =>
    action === 'pause' ? controls.pause(queue) : controls.resume(queue),
  );
  if (action === 'pause')
    print(
      changed
        ? `paused ${queue}: every worker stops fetching from it within a second; jobs in flight finish`
        : `${queue} was already paused`,
    );
  else print(changed ? `resumed ${queue}: every worker fetches from it again` : `${queue} was not paused`);
  return 0;
}
