/**
 * `polyqueue cancel <job id>`: what DELETE /v1/jobs/:id does, on the job records of the state
 * store (STATE_URL, as for the apps). A job not yet running never runs; a running one has its
 * handler's signal aborted by its worker within about a second; both end `cancelled`, never
 * retried. A finished job (succeeded, dead, cancelled) is left as it is, and the exit code is 1.
 */
import { createStateStore } from '@polyqueue/brokers';
import { cancelJobRecord } from '@polyqueue/core';
import { UsageError } from '../migrate/command';

type Env = Record<string, string | undefined>;
type Print = (line: string) => void;

/** The apps' default (app-runtime's config), so the CLI reads the records the API writes. */
const DEFAULT_STATE_URL = 'sqlite:./var/state.db';

export const CANCEL_USAGE = `usage: polyqueue cancel <job id>   the job never runs, or its running handler is aborted; status cancelled
(the job records live in the state store, STATE_URL)`;

export async function cancelCommand(
  args: string[],
  env: Env,
  print: Print = console.log,
  printError: Print = console.error,
): Promise<number> {
  const [id, ...extra] = args;
  if (!id || id.startsWith('-') || extra.length > 0)
    throw new UsageError(`cancel: name one job id\n\n${CANCEL_USAGE}`);
  const state = await createStateStore(env.STATE_URL ?? DEFAULT_STATE_URL, env);
  try {
    const result = await cancelJobRecord(state, id);
    switch (result.outcome) {
      case 'cancelled':
        print(
          result.wasRunning
            ? `cancelled ${id}: it was running; its worker aborts it within about a second`
            : `cancelled ${id}: it will not run`,
        );
        return 0;
      case 'finished':
        printError(
          `polyqueue: job ${id} has already finished (status ${result.job.status}); nothing to cancel`,
        );
        return 1;
      case 'unknown':
        printError(`polyqueue: no job ${JSON.stringify(id)} in the state store (STATE_URL)`);
        return 1;
      case 'contended':
        printError(`polyqueue: job ${id} kept changing status; run the cancel again`);
        return 1;
    }
  } finally {
    await state.close();
  }
}
