/**
 * `polyqueue limits [<queue>] [--rate N] [--concurrency N] [--per-key N] [--clear]`: the
 * cluster-wide rate and concurrency limits in the state store (STATE_URL, as for the apps),
 * the same ones PUT /v1/queues/:q/limits writes. Every worker obeys a change within about a
 * second. Unlike the PUT, which replaces all three, a flag changes only its own limit; `off`
 * lifts it, `--clear` lifts all three.
 */
import { parseArgs } from 'node:util';
import { createQueueLimits } from '@polyqueue/brokers';
import { invalidLimits, type Limits, type QueueLimits } from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import { UsageError } from '../migrate/command';

type Env = Record<string, string | undefined>;
type Print = (line: string) => void;

/** The apps' default (app-runtime's config), so the CLI reads the limits the workers read. */
const DEFAULT_STATE_URL = 'sqlite:./var/state.db';

export const LIMITS_USAGE = `usage: polyqueue limits [--json]                    every queue's limits
       polyqueue limits <queue> [--rate N] [--concurrency N] [--per-key N] [--clear] [--force] [--json]
         --rate         jobs started per second over every worker (fractions allowed)
         --concurrency  jobs running at once over every worker
         --per-key      jobs running at once per job key (the envelope's "key")
         each flag changes its own limit ("off" lifts it); --clear lifts all three;
         --force sets limits on a queue not in the job catalogue (${jobQueues.join(' ')})`;

const FLAGS = { rate: 'ratePerSec', concurrency: 'concurrency', 'per-key': 'perKeyConcurrency' } as const;

async function withLimits<T>(env: Env, run: (limits: QueueLimits) => Promise<T>): Promise<T> {
  const limits = await createQueueLimits(env.STATE_URL ?? DEFAULT_STATE_URL, env);
  try {
    return await run(limits);
  } finally {
    await limits.close();
  }
}

/** One line per queue: `email  rate 10/s  concurrency 5  per key 1`, or `no limits`. */
export function describeLimits(queue: string, limits: Limits | undefined): string {
  const parts: string[] = [];
  if (limits?.ratePerSec !== undefined) parts.push(`rate ${limits.ratePerSec}/s`);
  if (limits?.concurrency !== undefined) parts.push(`concurrency ${limits.concurrency}`);
  if (limits?.perKeyConcurrency !== undefined) parts.push(`per key ${limits.perKeyConcurrency}`);
  return `${queue.padEnd(16)}${parts.length > 0 ? parts.join('  ') : 'no limits'}`;
}

export async function limitsCommand(args: string[], env: Env, print: Print = console.log): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      'per-key': { type: 'string' },
      clear: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const [queue, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`limits: name one queue\n\n${LIMITS_USAGE}`);
  const changes = Object.entries(FLAGS).filter(([flag]) => values[flag as keyof typeof FLAGS] !== undefined);
  const changing = changes.length > 0 || values.clear;
  if (!queue) {
    if (changing) throw new UsageError(`limits: name the queue to change\n\n${LIMITS_USAGE}`);
    const all = await withLimits(env, (limits) => limits.limits());
    const queues = [...new Set([...jobQueues, ...all.keys()])];
    if (values.json) print(JSON.stringify(queues.map((q) => ({ queue: q, limits: all.get(q) ?? {} }))));
    else for (const q of queues) print(describeLimits(q, all.get(q)));
    return 0;
  }
  // A typo would limit nothing any worker reads; a queue of another catalogue needs --force.
  if (changing && !values.force && !(jobQueues as readonly string[]).includes(queue))
    throw new UsageError(
      `limits: no queue "${queue}" in the job catalogue (${jobQueues.join(', ')}); add --force to limit it anyway`,
    );
  const result = await withLimits(env, async (store) => {
    const current = (await store.limits()).get(queue) ?? {};
    if (!changing) return current;
    const next: Record<string, unknown> = values.clear ? {} : { ...current };
    for (const [flag, field] of changes) {
      const text = values[flag as keyof typeof FLAGS] as string;
      if (text === 'off') delete next[field];
      else next[field] = text.trim() === '' ? Number.NaN : Number(text);
    }
    const reason = invalidLimits(next);
    if (reason) throw new UsageError(`limits: ${reason.replace(/^(\w+)/, (f) => flagOf(f))}; "off" lifts it`);
    await store.setLimits(queue, next as Limits);
    return next as Limits;
  });
  if (values.json) print(JSON.stringify({ queue, limits: result }));
  else print(`${describeLimits(queue, result)}${changing ? '  (every worker obeys within a second)' : ''}`);
  return 0;
}

/** The flag that sets a field, for messages: ratePerSec -> --rate. */
function flagOf(field: string): string {
  const flag = Object.entries(FLAGS).find(([, f]) => f === field)?.[0];
  return flag ? `--${flag}` : field;
}
