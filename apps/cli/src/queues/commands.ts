/**
 * `polyqueue stats <queue>...` and `polyqueue dead list|redrive|purge <queue>`: what an
 * operator runs from a runbook. The broker is the one BROKER and its variables select, as
 * for the apps.
 */
import { parseArgs } from 'node:util';
import { createBrokerFromEnv } from '@polyqueue/brokers';
import { type Broker, type BrokerAdmin, deadLettersMatching, MAX_BULK_JOBS } from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import { UsageError } from '../migrate/command';
import { pausedQueues } from './pause';

type Env = Record<string, string | undefined>;
type Print = (line: string) => void;

export const QUEUES_USAGE = `usage: polyqueue stats [<queue>...] [--json]        ready / in flight / delayed / dead, paused (default: ${jobQueues.join(' ')})
       polyqueue dead list <queue> [--limit 20] [--json]
       polyqueue dead redrive <queue> (--all | <id>... | --match <text>) [--dry-run]   --match: the reason holds the text
       polyqueue dead purge <queue> --yes`;

async function withBroker<T>(env: Env, run: (broker: Broker & BrokerAdmin) => Promise<T>): Promise<T> {
  const broker = await createBrokerFromEnv(env);
  try {
    return await run(broker);
  } finally {
    await broker.close();
  }
}

export async function statsCommand(args: string[], env: Env, print: Print = console.log): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false } },
  });
  const queues = positionals.length > 0 ? positionals : [...jobQueues];
  const paused = await pausedQueues(env);
  const rows = await withBroker(env, async (broker) => {
    const out = [];
    // paused: null when the state store (STATE_URL) could not be read.
    for (const queue of queues)
      out.push({ queue, ...(await broker.stats(queue)), paused: paused ? paused.has(queue) : null });
    return out;
  });
  if (values.json) {
    print(JSON.stringify(rows));
    return 0;
  }
  print(
    `${'queue'.padEnd(16)}${'ready'.padStart(10)}${'in flight'.padStart(11)}${'delayed'.padStart(10)}${'dead'.padStart(10)}  paused`,
  );
  for (const r of rows) {
    print(
      `${r.queue.padEnd(16)}${String(r.ready).padStart(10)}${String(r.inFlight).padStart(11)}${String(r.delayed).padStart(10)}${String(r.dead).padStart(10)}  ${r.paused === null ? '?' : r.paused ? 'yes' : 'no'}`,
    );
  }
  return 0;
}

export async function deadCommand(args: string[], env: Env, print: Print = console.log): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      limit: { type: 'string', default: '20' },
      all: { type: 'boolean', default: false },
      match: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const [action, queue, ...ids] = positionals;
  if (!action || !['list', 'redrive', 'purge'].includes(action))
    throw new UsageError(`dead: expected list, redrive or purge\n\n${QUEUES_USAGE}`);
  if (!queue) throw new UsageError(`dead ${action}: the queue is required\n\n${QUEUES_USAGE}`);
  return withBroker(env, async (broker) => {
    const dead = broker.deadLetters(queue);
    if (action === 'list') {
      const limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new UsageError(`--limit must be a positive whole number (got ${JSON.stringify(values.limit)})`);
      const letters = await dead.list(limit);
      if (values.json) print(JSON.stringify(letters));
      else if (letters.length === 0) print(`no dead letters in ${queue}`);
      else for (const d of letters) print(`${d.deadAt}  ${d.id}  ${d.reason}`);
      return 0;
    }
    if (action === 'redrive') {
      if (values.match !== undefined) {
        const { ids: matching, capped } = await deadLettersMatching(
          dead,
          (await broker.stats(queue)).dead,
          values.match,
        );
        const more = capped ? ` (more match: run again for the next ${MAX_BULK_JOBS})` : '';
        const letters = `${matching.length} dead letter${matching.length === 1 ? '' : 's'}`;
        if (values['dry-run']) print(`dry run: ${letters} of ${queue} match${more}; nothing changed`);
        else
          print(
            `redrove ${matching.length === 0 ? 0 : await dead.redrive(matching)} of ${letters} matching back to ${queue}${more}`,
          );
        return 0;
      }
      if (!values.all && ids.length === 0)
        throw new UsageError('dead redrive: name the ids to redrive, or --all, or --match <text>');
      const moved = await dead.redrive(values.all ? 'all' : ids);
      print(`redrove ${moved} dead letter${moved === 1 ? '' : 's'} back to ${queue}`);
      return 0;
    }
    if (!values.yes)
      throw new UsageError(`dead purge deletes every dead letter of ${queue}; add --yes to confirm`);
    const purged = await dead.purge();
    print(`purged ${purged} dead letter${purged === 1 ? '' : 's'} from ${queue}`);
    return 0;
  });
}
