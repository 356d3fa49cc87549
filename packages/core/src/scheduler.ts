import { randomUUID } from 'node:crypto';
import type { IdempotencyStore } from './idempotency';
import type { Logger } from './logger';
import { latestTick, nextTick, type Schedule, type ScheduleStore } from './schedules';

/** What a fire publishes: the schedule's job, under a key unique to the schedule and tick. */
export interface ScheduledFire {
  schedule: Schedule;
  fireTime: Date;
  /** `schedule:<name>:<fireTime ISO>`: the claim's key, and the publish's idempotency key. */
  key: string;
}

export interface SchedulerOptions {
  store: ScheduleStore;
  /** The state store's claims: the one replica whose claim of a tick succeeds fires it. */
  claims: IdempotencyStore;
  /** Publishes the job (the API's enqueue path, deduplicated by fire.key). */
  publish(fire: ScheduledFire): Promise<void>;
  logger: Logger;
  now?: () => Date;
  /** How often the schedules are read and the due ticks fired; 250 ms by default. */
  intervalMs?: number;
  /** The claim's lease: a replica that dies mid-fire frees the tick for another after it. */
  leaseMs?: number;
  /** This replica's claim owner; random by default. */
  owner?: string;
}

export function scheduleKey(name: string, fireTime: Date): string {
  return `schedule:${name}:${fireTime.toISOString()}`;
}

/**
 * Fires every schedule's ticks, once across any number of replicas. Each pass reads the
 * schedules, and for each one whose latest tick is due and not yet handled here, claims
 * `schedule:<name>:<tick>` in the state store: exactly one replica gets 'claimed', publishes
 * and marks the key done, so a later replica sees 'done'. A replica that finds the key 'busy'
 * (another is firing it) tries again next pass, so a firer that died between claim and
 * complete is replaced once its lease ends; its publish, if it happened, is deduplicated by
 * the idempotency key. Only the latest due tick fires: after downtime (or a stalled pass) the
 * ticks missed are collapsed into one fire when catchUp is true, none when it is false.
 */
export class Scheduler {
  readonly #options: SchedulerOptions;
  readonly #now: () => Date;
  readonly #owner: string;
  /** Per schedule name: the latest tick this replica has handled (fired, or seen done). */
  readonly #handled = new Map<string, number>();
  /** Keys this replica is firing now: its own claim would answer 'claimed' again (a renewal). */
  readonly #firing = new Set<string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;

  constructor(options: SchedulerOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    this.#owner = options.owner ?? randomUUID();
  }

  /** Runs a pass now and then every intervalMs until stop(). */
  start(): void {
    if (this.#timer) return;
    const run = () => {
      // A pass still running (a slow store) is not overlapped.
      if (this.#running) return;
      this.#running = this.runOnce()
        .then(() => undefined)
        .catch((error: unknown) => this.#options.logger.error({ err: error }, 'scheduler pass failed'))
        .finally(() => {
          this.#running = undefined;
        });
    };
    run();
    this.#timer = setInterval(run, this.#options.intervalMs ?? 250);
    this.#timer.unref?.();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One pass: fires the due tick of every schedule. Resolves with the fires this replica made. */
  async runOnce(): Promise<ScheduledFire[]> {
    const now = this.#now();
    const schedules = await this.#options.store.list();
    const names = new Set(schedules.map((s) => s.name));
    for (const name of this.#handled.keys()) if (!names.has(name)) this.#handled.delete(name);
    const fired = await Promise.all(schedules.map((schedule) => this.#fireDue(schedule, now)));
    return fired.filter((fire): fire is ScheduledFire => fire !== undefined);
  }

  async #fireDue(schedule: Schedule, now: Date): Promise<ScheduledFire | undefined> {
    const due = latestTick(schedule, now);
    if (!due) return undefined;
    let handled = this.#handled.get(schedule.name);
    if (handled === undefined) {
      // First sight of the schedule (start-up, or just created): the due tick is a missed one
      // unless it is before the schedule was created. Without catchUp it is skipped.
      const created = schedule.createdAt ? Date.parse(schedule.createdAt) : Number.NEGATIVE_INFINITY;
      const catchUp = (schedule.catchUp ?? true) && due.getTime() >= created;
      if (!catchUp) {
        this.#handled.set(schedule.name, due.getTime());
        return undefined;
      }
      handled = Number.NEGATIVE_INFINITY;
    }
    if (due.getTime() <= handled) return undefined;

    const fire: ScheduledFire = { schedule, fireTime: due, key: scheduleKey(schedule.name, due) };
    if (this.#firing.has(fire.key)) return undefined;
    this.#firing.add(fire.key);
    try {
      return await this.#fire(fire);
    } finally {
      this.#firing.delete(fire.key);
    }
  }

  async #fire(fire: ScheduledFire): Promise<ScheduledFire | undefined> {
    const { schedule, fireTime: due } = fire;
    const { claims } = this.#options;
    const claim = await claims.claim(fire.key, this.#owner, this.#options.leaseMs ?? 10_000);
    if (claim.state === 'done') {
      this.#handled.set(schedule.name, due.getTime());
      return undefined;
    }
    // Another replica is firing it: look again next pass, in case it dies before it is done.
    if (claim.state === 'busy') return undefined;
    try {
      await this.#options.publish(fire);
    } catch (error) {
      await claims.release(fire.key, this.#owner);
      this.#options.logger.error(
        { err: error, schedule: schedule.name, fireTime: due.toISOString() },
        'scheduled job not published; retrying next pass',
      );
      return undefined;
    }
    await claims.complete(fire.key, this.#owner, { publishedAt: this.#now().toISOString() });
    this.#handled.set(schedule.name, due.getTime());
    return fire;
  }
}

/** A schedule's next fire time after now, for GET /v1/schedules. */
export function nextFireTime(schedule: Schedule, now: Date): string {
  return nextTick(schedule, now).toISOString();
}
