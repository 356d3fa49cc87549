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
  /**
   * How far back a running replica fires the ticks it missed (a pass that stalled past a tick,
   * a publish that failed while the broker was down): each one late, oldest first; 60 s by
   * default. Older ticks are treated as downtime.
   */
  missedTickWindowMs?: number;
}

/** At most this many missed ticks are fired late in one pass (a cron with seconds, a long window). */
const MAX_LATE_TICKS = 100;

/** What became of one tick's claim: published here, already done, held by another, or not published. */
type FireOutcome = 'fired' | 'done' | 'busy' | 'failed';

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
 * the idempotency key. A replica that has been running fires every tick since the last one it
 * handled (within missedTickWindowMs), so a pass that stalled past a tick, or a publish refused
 * while the broker restarted, fires it late rather than never. A replica that starts has no such
 * history: for it the ticks missed before it (downtime) are collapsed into one fire when catchUp
 * is true, none when it is false.
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
    return fired.flat();
  }

  async #fireDue(schedule: Schedule, now: Date): Promise<ScheduledFire[]> {
    const due = latestTick(schedule, now);
    if (!due) return [];
    let handled = this.#handled.get(schedule.name);
    if (handled === undefined) {
      // First sight of the schedule (start-up, or just created): the due tick is a missed one
      // unless it is before the schedule was created. Without catchUp it is skipped.
      const created = schedule.createdAt ? Date.parse(schedule.createdAt) : Number.NEGATIVE_INFINITY;
      const catchUp = (schedule.catchUp ?? true) && due.getTime() >= created;
      if (!catchUp) {
        this.#handled.set(schedule.name, due.getTime());
        return [];
      }
      handled = Number.NEGATIVE_INFINITY;
    }
    if (due.getTime() <= handled) return [];

    const fired: ScheduledFire[] = [];
    // Every tick up to the first one left open (busy or failed) counts as handled.
    let open = false;
    for (const tick of this.#ticksToFire(schedule, handled, due, now)) {
      const fire: ScheduledFire = { schedule, fireTime: tick, key: scheduleKey(schedule.name, tick) };
      const outcome = await this.#fireOnce(fire);
      if (outcome === 'fired') fired.push(fire);
      if (outcome === 'busy' || outcome === 'failed') open = true;
      else if (!open) this.#handled.set(schedule.name, tick.getTime());
      // The broker refused it: the later ticks wait for the next pass, in order.
      if (outcome === 'failed') break;
    }
    return fired;
  }

  /**
   * The ticks to fire now, oldest first: the due one, and for a replica that handled an earlier
   * tick, every tick since it within missedTickWindowMs (late, but once each).
   */
  #ticksToFire(schedule: Schedule, handled: number, due: Date, now: Date): Date[] {
    if (!Number.isFinite(handled)) return [due];
    const from = Math.max(handled, now.getTime() - (this.#options.missedTickWindowMs ?? 60_000));
    const ticks: Date[] = [];
    for (let tick = nextTick(schedule, new Date(from)); tick < due; tick = nextTick(schedule, tick))
      ticks.push(tick);
    ticks.push(due);
    return ticks.slice(-MAX_LATE_TICKS);
  }

  async #fireOnce(fire: ScheduledFire): Promise<FireOutcome> {
    // This replica is firing it already (overlapping passes): its own claim would renew.
    if (this.#firing.has(fire.key)) return 'busy';
    this.#firing.add(fire.key);
    try {
      return await this.#fire(fire);
    } finally {
      this.#firing.delete(fire.key);
    }
  }

  async #fire(fire: ScheduledFire): Promise<FireOutcome> {
    const { schedule, fireTime } = fire;
    const { claims } = this.#options;
    const claim = await claims.claim(fire.key, this.#owner, this.#options.leaseMs ?? 10_000);
    if (claim.state === 'done') return 'done';
    // Another replica is firing it: look again next pass, in case it dies before it is done.
    if (claim.state === 'busy') return 'busy';
    try {
      await this.#options.publish(fire);
    } catch (error) {
      await claims.release(fire.key, this.#owner);
      this.#options.logger.error(
        { err: error, schedule: schedule.name, fireTime: fireTime.toISOString() },
        'scheduled job not published; retrying next pass',
      );
      return 'failed';
    }
    await claims.complete(fire.key, this.#owner, { publishedAt: this.#now().toISOString() });
    return 'fired';
  }
}

/** A schedule's next fire time after now, for GET /v1/schedules. */
export function nextFireTime(schedule: Schedule, now: Date): string {
  return nextTick(schedule, now).toISOString();
}
