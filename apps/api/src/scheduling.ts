import { readFile } from 'node:fs/promises';
import {
  ConfigError,
  type IdempotencyStore,
  type Logger,
  type ScheduledFire,
  Scheduler,
  type ScheduleStore,
} from '@polyqueue/core';
import type { JobType } from '@polyqueue/jobs';
import { type EnqueueDeps, enqueueJob, hashJson } from './enqueue';
import { HttpProblem } from './problem';
import { parseSchedule } from './routes-schedules';

/**
 * Publishes a fire through the API's own enqueue path, with `schedule:<name>:<tick>` as the
 * Idempotency-Key: a replica that republishes a tick (its claim's lease ran out after a publish
 * whose done mark never landed) gets the job of the first publish, not a second job.
 */
export function publishFire(deps: EnqueueDeps): (fire: ScheduledFire) => Promise<void> {
  return async ({ schedule, key }) => {
    const { type, payload } = schedule.job;
    await enqueueJob(deps, {
      type: type as JobType,
      payloadFor: () => payload,
      requestHash: hashJson(type, payload),
      idempotencyKey: key,
    });
  };
}

/**
 * SCHEDULES_FILE: a JSON array of schedules as POST /v1/schedules takes them, put into the
 * store at start (each replica puts the same, harmlessly). A schedule already stored keeps
 * its createdAt, so catch-up after downtime still works; a new one is created now, so the
 * first start does not fire a tick from before it. A bad file stops the start, naming the entry.
 */
export async function loadSchedulesFile(path: string, store: ScheduleStore, now: Date): Promise<number> {
  let entries: unknown;
  try {
    entries = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`SCHEDULES_FILE: cannot read ${path} as JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(entries)) throw new ConfigError('SCHEDULES_FILE: a JSON array of schedules is required');
  const stored = new Map((await store.list()).map((s) => [s.name, s]));
  const schedules = entries.map((entry, index) => {
    try {
      return parseSchedule(entry);
    } catch (error) {
      const detail = error instanceof HttpProblem ? error.message : String(error);
      throw new ConfigError(`SCHEDULES_FILE: entry ${index}: ${detail}`);
    }
  });
  for (const schedule of schedules) {
    schedule.createdAt = stored.get(schedule.name)?.createdAt ?? now.toISOString();
    await store.put(schedule);
  }
  return schedules.length;
}

/** The API process's scheduler: the state store's claims elect the one replica firing a tick. */
export function startScheduler(options: {
  store: ScheduleStore;
  claims: IdempotencyStore;
  enqueue: EnqueueDeps;
  logger: Logger;
}): Scheduler {
  const scheduler = new Scheduler({
    store: options.store,
    claims: options.claims,
    publish: publishFire(options.enqueue),
    logger: options.logger,
  });
  scheduler.start();
  return scheduler;
}
