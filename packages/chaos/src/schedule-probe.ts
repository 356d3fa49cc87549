/**
 * The schedule active during a chaos run: created through POST /v1/schedules once the services
 * are up (an email every SCHEDULE_EVERY_MS to TICK_RECIPIENT), deleted once the client and the
 * faults are done, and then counted tick by tick:
 *
 * - fired: the scheduler's claim `schedule:<name>:<tick>` is done in the state store, or the
 *   tick's email arrived (an API killed between its publish and its done mark).
 * - emails: the sink's copies of the tick's job (the job id in each email; its record's
 *   Idempotency-Key names the tick). A fired tick with none is lost; a second copy is resent.
 * - skipped: a tick that never fired. Only the latest due tick fires (issue 16: one catch-up
 *   fire after downtime), so ticks pass unfired while the only API is down or cannot publish to
 *   a restarting broker; those are counted apart from ticks skipped with no fault near.
 *
 * The claims are read after the services have stopped: a claim of a tick nobody fired is
 * taken and released again, which nothing can race any more.
 */
import { createStateStore } from '@polyqueue/brokers';
import type { FaultRecord } from './report';
import type { SinkDelivery } from './smtp-sink';

/** The production minimum (MIN_EVERY_MS): a tick a second, each one an email. */
export const SCHEDULE_EVERY_MS = 1_000;
export const TICK_RECIPIENT = 'tick@chaos.test';
/** The API's scheduler passes are 250 ms apart: a tick this close to the DELETE may not have come round. */
const PASS_SLACK_MS = 500;
/** How long after a fault's target is back a tick may still go unfired because of it. */
const FAULT_SHADOW_MS = 2 * SCHEDULE_EVERY_MS;

export interface ScheduleProbe {
  name: string;
  /** Wall-clock ms of the schedule's creation and deletion. */
  createdAt: number;
  deletedAt?: number;
  /** Wall-clock ms when the DELETE was first sent. */
  stoppingAt?: number;
  /** DELETE /v1/schedules/:name; the ticks after it are not counted. */
  stop(): Promise<void>;
}

export async function startScheduleProbe(baseUrl: string, runId: string): Promise<ScheduleProbe> {
  const name = `chaos-${runId}`;
  const job = {
    type: 'send_email',
    payload: { to: TICK_RECIPIENT, subject: `chaos tick ${runId}`, body: 'one email per tick' },
  };
  const res = await fetch(`${baseUrl}/v1/schedules`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, everyMs: SCHEDULE_EVERY_MS, job }),
  });
  if (!res.ok) throw new Error(`POST /v1/schedules answered ${res.status}: ${await res.text()}`);
  // The API's own creation time: the scheduler fires the ticks after it.
  const createdAt = Date.parse(((await res.json()) as { createdAt: string }).createdAt);
  const probe: ScheduleProbe = {
    name,
    createdAt,
    async stop() {
      probe.stoppingAt = Date.now();
      // Retried: the API may be coming back from a kill.
      for (let attempt = 0; ; attempt++) {
        try {
          const del = await fetch(`${baseUrl}/v1/schedules/${encodeURIComponent(name)}`, {
            method: 'DELETE',
            signal: AbortSignal.timeout(3_000),
          });
          if (del.ok || del.status === 404) break;
          if (attempt >= 10) throw new Error(`DELETE /v1/schedules/${name} answered ${del.status}`);
        } catch (error) {
          if (attempt >= 10) throw error;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      probe.deletedAt = Date.now();
    },
  };
  return probe;
}

export interface TickFact {
  /** The tick, ISO. */
  tick: string;
  /** ms on the report's clock (since the first request). */
  at: number;
  fired: boolean;
  /** Job ids the sink's emails for this tick name. */
  jobIds: string[];
  emails: number;
}

export interface ScheduleFacts {
  name: string;
  everyMs: number;
  /** ms on the report's clock. */
  createdAt: number;
  deletedAt: number;
  ticks: TickFact[];
}

/**
 * Every tick of the probe's life and what became of it. `deliveries` are the sink's emails on
 * the report's clock; those of the schedule's jobs are returned apart (`scheduled`), so the
 * client's counts (orphans, resends) stay the client's.
 */
export async function collectScheduleFacts(options: {
  stateUrl: string;
  /** The services' environment: on a Redis Cluster run its REDIS_CLUSTER_NODES reach the records. */
  env: Record<string, string>;
  probe: ScheduleProbe;
  deliveries: SinkDelivery[];
  clientJobIds: Set<string>;
  /** Wall-clock ms -> the report's clock. */
  toReportClock: (wallMs: number) => number;
}): Promise<{ facts: ScheduleFacts; scheduled: Set<string> }> {
  const { probe, deliveries, clientJobIds, toReportClock } = options;
  const deletedAt = probe.deletedAt ?? Date.now();
  const lastTick = (probe.stoppingAt ?? deletedAt) - PASS_SLACK_MS;
  const prefix = `schedule:${probe.name}:`;
  const state = await createStateStore(options.stateUrl, options.env);
  try {
    const tickOfJob = new Map<string, string>();
    const others = [...new Set(deliveries.map((d) => d.jobId))].filter((id) => !clientJobIds.has(id));
    for (const id of others) {
      const key = (await state.getJob(id))?.idempotencyKey;
      if (key?.startsWith(prefix)) tickOfJob.set(id, key.slice(prefix.length));
    }
    const ticks: TickFact[] = [];
    const every = SCHEDULE_EVERY_MS;
    for (let t = Math.ceil(probe.createdAt / every) * every; t <= lastTick; t += every) {
      const tick = new Date(t).toISOString();
      const jobIds = [...tickOfJob].filter(([, k]) => k === tick).map(([id]) => id);
      const emails = deliveries.filter((d) => tickOfJob.get(d.jobId) === tick).length;
      const claim = await state.claim(`${prefix}${tick}`, 'chaos-report', 1_000);
      if (claim.state === 'claimed') await state.release(`${prefix}${tick}`, 'chaos-report');
      const fired = claim.state !== 'claimed' || emails > 0;
      ticks.push({ tick, at: toReportClock(t), fired, jobIds, emails });
    }
    const facts: ScheduleFacts = {
      name: probe.name,
      everyMs: every,
      createdAt: toReportClock(probe.createdAt),
      deletedAt: toReportClock(deletedAt),
      ticks,
    };
    return { facts, scheduled: new Set(tickOfJob.keys()) };
  } finally {
    await state.close?.();
  }
}

export interface ScheduleSummary {
  ticks: number;
  fired: number;
  /** Fired ticks with exactly one email. */
  once: number;
  /** Emails beyond the first per fired tick. */
  resent: number;
  /** Fired ticks with no email by the end. */
  lost: number;
  /**
   * Unfired ticks while a fault (or its recovery) was under way, or due within a scheduler pass
   * before it: one catch-up fire by design.
   */
  skippedInFaults: number;
  /** Unfired ticks with no fault near: a scheduler pass that stalled past a tick. */
  skippedOtherwise: number;
  /** When those were due, on the report's clock (ms). */
  skippedOtherwiseAt: number[];
}

export function summarizeSchedule(schedule: ScheduleFacts, faults: FaultRecord[]): ScheduleSummary {
  // A tick due just before a kill may not have come round to a pass yet (PASS_SLACK_MS), and
  // the API that comes back fires only the latest tick: it is lost to the fault too.
  const inFault = (at: number) =>
    faults.some(
      (f) => f.kind !== 'kill-worker' && at >= f.at - PASS_SLACK_MS && at <= f.backAt + FAULT_SHADOW_MS,
    );
  const fired = schedule.ticks.filter((t) => t.fired);
  const unfired = schedule.ticks.filter((t) => !t.fired);
  const otherwise = unfired.filter((t) => !inFault(t.at));
  return {
    ticks: schedule.ticks.length,
    fired: fired.length,
    once: fired.filter((t) => t.emails === 1).length,
    resent: fired.reduce((sum, t) => sum + Math.max(0, t.emails - 1), 0),
    lost: fired.filter((t) => t.emails === 0).length,
    skippedInFaults: unfired.length - otherwise.length,
    skippedOtherwise: otherwise.length,
    skippedOtherwiseAt: otherwise.map((t) => t.at),
  };
}

/** The report's line for the schedule. */
export function scheduleLine(schedule: ScheduleFacts, summary: ScheduleSummary): string {
  const s = (ms: number) => (ms / 1000).toFixed(1);
  return `schedule: every ${s(schedule.everyMs)} s from t=${s(schedule.createdAt)} to t=${s(schedule.deletedAt)}: ${summary.ticks} ticks, ${summary.fired} fired, ${summary.once} delivered exactly once, ${summary.resent} resent, ${summary.lost} lost; not fired: ${summary.skippedInFaults} while the API or the broker was down (one catch-up fire by design), ${summary.skippedOtherwise} otherwise${summary.skippedOtherwise > 0 ? ` (due at ${summary.skippedOtherwiseAt.map((at) => `t=${s(at)}`).join(', ')})` : ''}`;
}

/** The docs table's note for the schedule. */
export function scheduleNote(summary: ScheduleSummary): string {
  return `schedule ${summary.fired}/${summary.ticks} ticks fired, ${summary.lost} lost, ${summary.resent} resent${summary.skippedOtherwise > 0 ? `, ${summary.skippedOtherwise} skipped outside faults` : ''}`;
}
