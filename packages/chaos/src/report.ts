/**
 * What a chaos run measured, counted where the side effects land (the SMTP sink); the text
 * it prints is in report-text.ts. Definitions (docs/reliability.md repeats them):
 *
 * - lost: jobs the API accepted (202) for which no email arrived by the end of the run.
 * - resent: emails beyond the first per job id.
 * - recovery: seconds from the last fault (kill or broker restart) to the last job's first email.
 * - in flight at a kill: the killed workers' polyqueue_jobs_in_flight gauge just before the
 *   SIGKILL (all workers for a broker restart); the API's: the client's unanswered requests.
 * - redelivery (what issue 13's "within 2 leases" is about), per fault:
 *   - a worker kill: the jobs it interrupted, known exactly from the SMTP sink: every SMTP
 *     transaction that was open at the SIGKILL (RCPT TO seen, the final "." not yet answered)
 *     and whose connection then closed before the sink answered it (a live worker never drops
 *     a session mid-transaction). Each such job's delay is from the kill to its next email from a
 *     transaction begun after the kill (the re-run; the copy an aborted DATA still committed
 *     does not count). Jobs the worker held outside an SMTP transaction (before RCPT TO, after
 *     the 250, before the ack) are not in the set: the gauge beside it says how many it held.
 *   - the broker restart: the jobs accepted (202) before the restart with no email yet, less
 *     those a worker kill cut (timed from their kill): the delay from the broker accepting
 *     connections again to each one's first email (0 if it arrived while the broker was away).
 *   - max redelivery: the largest of those delays, compared with 2 x lease; a job of the set
 *     with no such email by the end counts as not redelivered (the target is then not met).
 */
import { messageIdFor } from '@polyqueue/email-worker';
import type { PostedJob } from './load-client';
import type { Exit, StopResult } from './processes';
import { type ScheduleFacts, type ScheduleSummary, summarizeSchedule } from './schedule-probe';
import type { SinkDelivery } from './smtp-sink';

export const MESSAGE_ID_DOMAIN = 'chaos.test';

export interface FaultRecord {
  kind: 'kill-worker' | 'kill-api' | 'restart-broker';
  target: string;
  /** ms on the run's clock when the fault was injected. */
  at: number;
  /** ms when the target was back (ready). */
  backAt: number;
  /** ms when its mark (share of the jobs accepted, or of the posting time + 10 s) was reached; it fired
   * later when the previous fault had completed less than 2 leases before. */
  markAt?: number;
  /** Jobs inside the killed workers' handlers (gauge), or requests in flight for an API kill. */
  inFlight: number | undefined;
  /** SMTP DATA commands inside the sink's delay at that moment (any worker). */
  smtpInProgress: number;
  /** Jobs accepted and not yet delivered at that moment. */
  backlog: number;
  /** ...their job ids. */
  backlogJobIds?: string[];
  /** SMTP transactions open at the sink at that moment (any worker). */
  smtpOpen?: Transaction[];
  /** Of smtpOpen, those whose client connection closed before the sink answered: the killed worker's. */
  interrupted?: Transaction[];
  error?: string;
  /** What the fault did, when it says more than its kind (a failover: which node, how long). */
  detail?: string;
}

/** An SMTP transaction as the report sees it, on the run's clock. */
export interface Transaction {
  /** RCPT TO: user<index>@... names the client's job index. */
  rcpt: string;
  /** The job id of that index's 202 (filled in at the end of the run). */
  jobId?: string;
  /** "rcpt": nothing of the message received yet; "data": received, will be committed anyway. */
  stage: 'rcpt' | 'data';
  rcptAt: number;
  abortedAt?: number;
}

/** The job id a transaction's RCPT TO names (the client sends job i to user<i>@...). */
export function jobIdOf(t: Transaction, jobs: PostedJob[]): string | undefined {
  if (t.jobId !== undefined) return t.jobId;
  const index = /^user(\d+)@/.exec(t.rcpt)?.[1];
  return index === undefined ? undefined : jobs[Number(index)]?.jobId;
}

/** The fault with its transactions' job ids filled in. */
export function withJobIds(f: FaultRecord, jobs: PostedJob[]): FaultRecord {
  const fill = (list?: Transaction[]) =>
    list?.map((t) => {
      const jobId = jobIdOf(t, jobs);
      return jobId === undefined ? t : { ...t, jobId };
    });
  const smtpOpen = fill(f.smtpOpen);
  const interrupted = fill(f.interrupted);
  return { ...f, ...(smtpOpen ? { smtpOpen } : {}), ...(interrupted ? { interrupted } : {}) };
}

/** How long the jobs one fault interrupted waited to be delivered (again). */
export interface Redelivery {
  /** Index of the fault in RunFacts.faults. */
  fault: number;
  kind: FaultRecord['kind'];
  target: string;
  /** ms on the run's clock the delays count from: the SIGKILL, or the broker accepting again. */
  from: number;
  /** Job ids counted: the interrupted jobs (a kill), the accepted, undelivered ones (a restart). */
  jobIds: string[];
  /** Of a kill's jobs, how many were past DATA (their email committed although the worker died). */
  afterData: number;
  /** The killed worker's in-flight gauge, for comparison with jobIds.length. */
  gauge: number | undefined;
  /** Job id -> ms from `from` to its (next) email. */
  delays: Record<string, number>;
  /** Job ids with no such email by the end of the run. */
  missing: string[];
  maxMs: number | undefined;
  /**
   * A kill only: every job accepted and not yet delivered at the SIGKILL (the killed worker's
   * jobs outside an SMTP transaction are among them, with jobs merely queued): how many, the
   * largest delay from the kill to a first email, and how many had none by the end. An upper
   * bound that includes working off the backlog, not the redelivery metric.
   */
  pending?: { jobs: number; maxMs: number | undefined; missing: number };
}

export function redeliveries(facts: RunFacts): Redelivery[] {
  const out: Redelivery[] = [];
  // Jobs a worker kill cut are timed from that kill, not again from a restart they were pending at.
  const cutByKill = new Set(
    facts.faults
      .filter((f) => f.kind === 'kill-worker')
      .flatMap((f) => (f.interrupted ?? []).map((t) => jobIdOf(t, facts.jobs)))
      .filter((id): id is string => id !== undefined),
  );
  for (const [index, f] of facts.faults.entries()) {
    if (f.kind === 'kill-api') continue;
    const kill = f.kind === 'kill-worker';
    let jobIds: string[];
    let afterData = 0;
    if (kill) {
      const seen = new Set<string>();
      for (const t of f.interrupted ?? []) {
        const id = jobIdOf(t, facts.jobs);
        if (id === undefined || seen.has(id)) continue;
        seen.add(id);
        if (t.stage === 'data') afterData++;
      }
      jobIds = [...seen];
    } else {
      jobIds = [...new Set(f.backlogJobIds ?? [])].filter((id) => !cutByKill.has(id));
    }
    const from = kill ? f.at : f.backAt;
    const delays: Record<string, number> = {};
    const missing: string[] = [];
    for (const id of jobIds) {
      // A kill: the next email from a transaction begun after the SIGKILL (a re-run).
      // A restart: the job's first email; one that arrived while the broker was away counts 0.
      const next = facts.deliveries.find((d) => d.jobId === id && (!kill || (d.rcptAt ?? d.at) > f.at));
      if (next) delays[id] = Math.max(0, next.at - from);
      else missing.push(id);
    }
    const values = Object.values(delays);
    let pending: Redelivery['pending'];
    if (kill) {
      const ids = [...new Set(f.backlogJobIds ?? [])];
      let maxMs: number | undefined;
      let none = 0;
      for (const id of ids) {
        const first = facts.deliveries.find((d) => d.jobId === id);
        if (!first) none++;
        else maxMs = Math.max(maxMs ?? 0, first.at - f.at);
      }
      pending = { jobs: ids.length, maxMs, missing: none };
    }
    out.push({
      fault: index,
      kind: f.kind,
      target: f.target,
      from,
      jobIds,
      afterData,
      gauge: f.inFlight,
      delays,
      missing,
      maxMs: values.length > 0 ? Math.max(...values) : undefined,
      ...(pending ? { pending } : {}),
    });
  }
  return out;
}

export interface RunFacts {
  broker: string;
  atLeastOnce: boolean;
  leaseMs: number;
  leaseIs: string;
  commit: string;
  n: number;
  jobs: PostedJob[];
  /** The client's jobs' emails (and any unknown ones); the schedule's are in `schedule`. */
  deliveries: SinkDelivery[];
  /** The schedule active during the run, tick by tick (absent with --no-schedule and in older runs). */
  schedule?: ScheduleFacts;
  faults: FaultRecord[];
  /** ms on the run's clock when the client had every answer (or gave up). */
  clientDoneAt: number;
  /** ms on the run's clock when the run stopped waiting for emails. */
  endAt: number;
  unexpectedExits: Record<string, Exit[]>;
  shutdown: StopResult[];
  /** Job id -> status at the end, from GET /v1/jobs/:id. */
  statuses: Record<string, string>;
  notes: string[];
  elapsedS: number;
  options: Record<string, unknown>;
}

export interface Summary {
  broker: string;
  n: number;
  accepted: number;
  unanswered: number;
  rejected: number;
  replayed: number;
  lost: number;
  lostIds: string[];
  /** Status at the end -> count, over the lost jobs: `processing` is a claim or lease still held, `queued`/`pending` a job the broker may never have had. */
  lostByStatus: Record<string, number>;
  delivered: number;
  resent: number;
  resentJobs: number;
  resentAfterClientGone: number;
  orphanEmails: number;
  wrongMessageId: number;
  inFlightAtKills: number;
  recoveryS: number | undefined;
  /** Per worker kill and broker restart: the jobs it interrupted and how long they waited. */
  redeliveries: Redelivery[];
  /** Largest redelivery delay of any fault (s); undefined when no fault interrupted a job. */
  maxRedeliveryS: number | undefined;
  /** Distinct jobs of those sets with no (next) email by the end of the run. */
  notRedelivered: number;
  /** 2 x lease, in s: the target for maxRedeliveryS. */
  redeliveryTargetS: number;
  /** Every interrupted job redelivered, the slowest within 2 leases; undefined when no job was timed. */
  redeliveryMet: boolean | undefined;
  tailS: number | undefined;
  within2Leases: boolean;
  slowJobs: number;
  crashes: number;
  /** Accepted jobs whose status at the end is not `succeeded`. */
  unfinished: number;
  /** ...of which the email did arrive: a copy will run again, or the outcome was never recorded. */
  unfinishedDelivered: number;
  /** Status -> count at the end. */
  statusCounts: Record<string, number>;
  schedule?: ScheduleSummary;
  verdict: 'pass' | 'fail' | 'at-most-once';
  reasons: string[];
}

export function summarize(facts: RunFacts): Summary {
  const byJob = new Map<string, SinkDelivery[]>();
  for (const d of facts.deliveries) {
    const list = byJob.get(d.jobId);
    if (list) list.push(d);
    else byJob.set(d.jobId, [d]);
  }
  const accepted = facts.jobs.filter((j) => j.jobId !== undefined);
  const acceptedIds = new Set(accepted.map((j) => j.jobId!));
  const lostIds = accepted.filter((j) => !byJob.has(j.jobId!)).map((j) => j.jobId!);
  let resent = 0;
  let resentJobs = 0;
  for (const list of byJob.values()) {
    if (list.length > 1) {
      resent += list.length - 1;
      resentJobs++;
    }
  }
  const resentAfterClientGone = facts.deliveries.filter((d) => d.clientGone).length;
  const orphanEmails = facts.deliveries.filter((d) => !acceptedIds.has(d.jobId)).length;
  const wrongMessageId = facts.deliveries.filter(
    (d) => d.messageId !== messageIdFor(d.jobId, MESSAGE_ID_DOMAIN),
  ).length;
  const killFaults = facts.faults.filter((f) => f.kind !== 'kill-api');
  const inFlightAtKills = killFaults.reduce((sum, f) => sum + (f.inFlight ?? 0), 0);

  const lastFault = facts.faults.reduce((last, f) => Math.max(last, f.at), 0);
  const lastFaultBack = facts.faults.reduce((last, f) => Math.max(last, f.backAt), 0);
  const firstAt = (id: string) => byJob.get(id)?.[0]?.at;
  const lastAccepted = accepted.reduce((last, j) => Math.max(last, j.acceptedAt ?? 0), 0);
  let lastFirst = 0;
  let slowJobs = 0;
  for (const job of accepted) {
    const at = firstAt(job.jobId!);
    if (at === undefined) continue;
    lastFirst = Math.max(lastFirst, at);
    if (at > Math.max(job.acceptedAt ?? 0, lastFaultBack) + 2 * facts.leaseMs) slowJobs++;
  }
  const recovered = lostIds.length === 0 && accepted.length > 0;
  const recoveryS = recovered && facts.faults.length > 0 ? (lastFirst - lastFault) / 1000 : undefined;
  const tailS = recovered ? (lastFirst - lastAccepted) / 1000 : undefined;
  const within2Leases = recovered && lastFirst <= Math.max(lastFaultBack, lastAccepted) + 2 * facts.leaseMs;

  const redelivery = redeliveries(facts);
  const maxes = redelivery.map((r) => r.maxMs).filter((m): m is number => m !== undefined);
  const maxRedeliveryMs = maxes.length > 0 ? Math.max(...maxes) : undefined;
  const notRedelivered = new Set(redelivery.flatMap((r) => r.missing)).size;
  const redeliveryTargetMs = 2 * facts.leaseMs;
  // Nothing timed (no restart, no kill cut an SMTP transaction): no verdict either way.
  const redeliveryMet =
    maxRedeliveryMs === undefined && notRedelivered === 0
      ? undefined
      : facts.atLeastOnce && notRedelivered === 0 && (maxRedeliveryMs ?? 0) <= redeliveryTargetMs;

  const statusCounts = countBy(Object.values(facts.statuses));
  const unfinished = Object.entries(facts.statuses)
    .filter(([, status]) => status !== 'succeeded')
    .map(([id]) => id);
  const unanswered = facts.jobs.filter((j) => j.jobId === undefined && j.rejected === undefined).length;
  const rejected = facts.jobs.filter((j) => j.rejected !== undefined).length;
  const crashes = Object.values(facts.unexpectedExits).reduce((sum, list) => sum + list.length, 0);
  const reasons: string[] = [];
  if (lostIds.length > 0) reasons.push(`${lostIds.length} accepted job(s) never delivered`);
  if (unanswered > 0) reasons.push(`${unanswered} request(s) never answered despite retries`);
  if (rejected > 0) reasons.push(`${rejected} request(s) rejected with a 4xx`);
  if (wrongMessageId > 0) reasons.push(`${wrongMessageId} email(s) without the job's Message-ID`);
  const schedule = facts.schedule ? summarizeSchedule(facts.schedule, facts.faults) : undefined;
  const ticksLost = facts.atLeastOnce ? (schedule?.lost ?? 0) : 0;
  if (ticksLost > 0) reasons.push(`${ticksLost} fired schedule tick(s) never delivered`);
  const hardFail = unanswered > 0 || rejected > 0 || wrongMessageId > 0 || ticksLost > 0;
  const verdict = !facts.atLeastOnce
    ? hardFail
      ? 'fail'
      : 'at-most-once'
    : hardFail || lostIds.length > 0
      ? 'fail'
      : 'pass';
  if (facts.atLeastOnce && !within2Leases && recovered)
    reasons.push('the last job arrived later than 2 leases after the last fault and the last 202');
  if (facts.atLeastOnce && notRedelivered > 0)
    reasons.push(`${notRedelivered} interrupted job(s) not delivered again by the end`);
  if (facts.atLeastOnce && maxRedeliveryMs !== undefined && maxRedeliveryMs > redeliveryTargetMs)
    reasons.push(`max redelivery ${s(maxRedeliveryMs)} s > 2 leases (${s(redeliveryTargetMs)} s)`);
  if (resent > inFlightAtKills) reasons.push(`resent ${resent} > ${inFlightAtKills} in flight at the kills`);
  if (schedule && schedule.skippedOtherwise > 0)
    reasons.push(`${schedule.skippedOtherwise} schedule tick(s) not fired with no fault near`);
  return {
    broker: facts.broker,
    n: facts.n,
    accepted: accepted.length,
    unanswered,
    rejected,
    replayed: accepted.filter((j) => j.replayed).length,
    lost: lostIds.length,
    lostIds,
    lostByStatus: countBy(lostIds.map((id) => facts.statuses[id] ?? 'not asked')),
    delivered: byJob.size,
    resent,
    resentJobs,
    resentAfterClientGone,
    orphanEmails,
    wrongMessageId,
    inFlightAtKills,
    recoveryS,
    redeliveries: redelivery,
    maxRedeliveryS: maxRedeliveryMs === undefined ? undefined : maxRedeliveryMs / 1000,
    notRedelivered,
    redeliveryTargetS: redeliveryTargetMs / 1000,
    redeliveryMet,
    tailS,
    within2Leases,
    slowJobs,
    crashes,
    unfinished: unfinished.length,
    unfinishedDelivered: unfinished.filter((id) => byJob.has(id)).length,
    statusCounts,
    ...(schedule ? { schedule } : {}),
    verdict,
    reasons,
  };
}

/** ms as seconds with one decimal, as the report prints them. */
export const s = (ms: number) => (ms / 1000).toFixed(1);

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
