import cronParser from 'cron-parser';

/**
 * A recurring job: its timing (a cron expression in a time zone, or a fixed period) and the job
 * it publishes at each tick. Ticks are points in time every replica computes alike (cron's own,
 * or multiples of everyMs since the epoch), so "the tick of 12:00" names the same fire on every
 * replica and can be claimed once (scheduler.ts).
 */
export interface Schedule {
  name: string;
  cron?: string;
  everyMs?: number;
  /** IANA zone the cron expression is read in; UTC when absent. Not used with everyMs. */
  timezone?: string;
  job: { type: string; payload: unknown };
  /** After downtime, fire the latest missed tick once (true, the default) or none (false). */
  catchUp?: boolean;
  /** ISO time the schedule was created: no catch-up fire for a tick before it. */
  createdAt?: string;
}

/** The shortest period accepted from users: a tick a second. */
export const MIN_EVERY_MS = 1000;

/** A schedule field that is wrong, named for the API's 400 (field, message). */
export class ScheduleError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ScheduleError';
  }
}

export const SCHEDULE_NAME_PATTERN = /^[\w.-]{1,100}$/;

/**
 * Checks a schedule's timing and name (not its job: the job catalogue is the API's); throws a
 * ScheduleError naming the field. minEveryMs lowers MIN_EVERY_MS for tests.
 */
export function validateScheduleTiming(schedule: Schedule, minEveryMs = MIN_EVERY_MS): void {
  if (!SCHEDULE_NAME_PATTERN.test(schedule.name))
    throw new ScheduleError('name', 'letters, digits, "_", "-" and "." only, 1 to 100 of them');
  const hasCron = schedule.cron !== undefined;
  const hasEvery = schedule.everyMs !== undefined;
  if (hasCron === hasEvery) throw new ScheduleError('cron', 'give exactly one of cron and everyMs');
  if (schedule.timezone !== undefined && !isTimeZone(schedule.timezone))
    throw new ScheduleError('timezone', `unknown time zone ${JSON.stringify(schedule.timezone)}`);
  if (hasEvery) {
    const every = schedule.everyMs as number;
    if (!Number.isInteger(every) || every < minEveryMs)
      throw new ScheduleError('everyMs', `an integer of at least ${minEveryMs} is required`);
    return;
  }
  try {
    cronFrom(schedule, new Date(0)).next();
  } catch (error) {
    throw new ScheduleError('cron', `not a cron expression (${(error as Error).message})`);
  }
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function cronFrom(schedule: Schedule, currentDate: Date) {
  return cronParser.parseExpression(schedule.cron as string, {
    currentDate,
    tz: schedule.timezone ?? 'UTC',
  });
}

/** The first tick strictly after `after`. */
export function nextTick(schedule: Schedule, after: Date): Date {
  if (schedule.everyMs !== undefined) {
    const every = schedule.everyMs;
    return new Date((Math.floor(after.getTime() / every) + 1) * every);
  }
  return cronFrom(schedule, after).next().toDate();
}

/** The latest tick at or before `now` (the one that is due), or undefined when there is none. */
export function latestTick(schedule: Schedule, now: Date): Date | undefined {
  if (schedule.everyMs !== undefined) {
    const every = schedule.everyMs;
    return new Date(Math.floor(now.getTime() / every) * every);
  }
  // prev() is strictly before currentDate: start a millisecond later so a tick at `now` counts.
  try {
    return cronFrom(schedule, new Date(now.getTime() + 1))
      .prev()
      .toDate();
  } catch {
    return undefined;
  }
}

/** Where every replica reads the schedules from (STATE_URL's backend, or memory in tests). */
export interface ScheduleStore {
  list(): Promise<Schedule[]>;
  /** Creates or replaces the schedule of that name. */
  put(schedule: Schedule): Promise<void>;
  /** False when there was no schedule of that name. */
  delete(name: string): Promise<boolean>;
  close?(): Promise<void>;
}

/** An in-process ScheduleStore: for unit tests, and for schedules from SCHEDULES_FILE only. */
export class MemoryScheduleStore implements ScheduleStore {
  readonly #schedules = new Map<string, Schedule>();

  constructor(schedules: readonly Schedule[] = []) {
    for (const schedule of schedules) this.#schedules.set(schedule.name, schedule);
  }

  async list(): Promise<Schedule[]> {
    return [...this.#schedules.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async put(schedule: Schedule): Promise<void> {
    this.#schedules.set(schedule.name, schedule);
  }

  async delete(name: string): Promise<boolean> {
    return this.#schedules.delete(name);
  }
}
