/**
 * What a chaos run measured, counted where the side effects land (the SMTP sink), and the
 * table it prints. Definitions (docs/reliability.md repeats them):
 *
 * - lost: jobs the API accepted (202) for which no email arrived by the end of the run.
 * - resent: emails beyond the first per job id.
 * - recovery: seconds from the last fault (kill or broker restart) to the last job's first email.
 * - in flight at a kill: the killed workers' polyqueue_jobs_in_flight gauge just before the
 *   SIGKILL (all workers for a broker restart); the API's: the client's unanswered requests.
 */
import { messageIdFor } from '@polyqueue/email-worker';
import type { PostedJob } from './load-client';
import type { Exit, StopResult } from './processes';
import type { SinkDelivery } from './smtp-sink';

export const MESSAGE_ID_DOMAIN = 'chaos.test';

export interface FaultRecord {
  kind: 'kill-worker' | 'kill-api' | 'restart-broker';
  target: string;
  /** ms on the run's clock when the fault was injected. */
  at: number;
  /** ms when the target was back (ready). */
  backAt: number;
  /** Jobs inside the killed workers' handlers (gauge), or requests in flight for an API kill. */
  inFlight: number | undefined;
  /** SMTP DATA commands inside the sink's delay at that moment (any worker). */
  smtpInProgress: number;
  /** Jobs accepted and not yet delivered at that moment. */
  backlog: number;
  error?: string;
}

export interface RunFacts {
  broker: string;
  atLeastOnce: boolean;
  leaseMs: number;
  leaseIs: string;
  commit: string;
  n: number;
  jobs: PostedJob[];
  deliveries: SinkDelivery[];
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
  const hardFail = unanswered > 0 || rejected > 0 || wrongMessageId > 0;
  const verdict = !facts.atLeastOnce
    ? hardFail
      ? 'fail'
      : 'at-most-once'
    : hardFail || lostIds.length > 0
      ? 'fail'
      : 'pass';
  if (facts.atLeastOnce && !within2Leases && recovered)
    reasons.push('the last job arrived later than 2 leases after the last fault and the last 202');
  if (resent > inFlightAtKills) reasons.push(`resent ${resent} > ${inFlightAtKills} in flight at the kills`);
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
    tailS,
    within2Leases,
    slowJobs,
    crashes,
    unfinished: unfinished.length,
    unfinishedDelivered: unfinished.filter((id) => byJob.has(id)).length,
    statusCounts,
    verdict,
    reasons,
  };
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

const pad = (text: string, width: number) => text.padEnd(width);
const s = (ms: number) => (ms / 1000).toFixed(1);

/** The human report: the run, each fault, the counts, the verdict. */
export function formatReport(facts: RunFacts, summary: Summary): string {
  const out: string[] = [];
  out.push('');
  out.push(
    `chaos: ${facts.broker} at ${facts.commit}, N=${facts.n}, lease ${s(facts.leaseMs)} s (${facts.leaseIs}), run took ${facts.elapsedS.toFixed(0)} s`,
  );
  for (const note of facts.notes) out.push(`  note: ${note}`);
  out.push('');
  out.push('  faults (t = seconds since the first request):');
  for (const f of facts.faults) {
    out.push(
      `    t=${pad(s(f.at), 6)} ${pad(`${f.kind} ${f.target}`, 30)} back after ${pad(`${s(f.backAt - f.at)} s`, 8)} in flight ${pad(String(f.inFlight ?? '?'), 4)} smtp DATA open ${pad(String(f.smtpInProgress), 3)} backlog ${f.backlog}${f.error ? `  ERROR ${f.error}` : ''}`,
    );
  }
  for (const [name, exits] of Object.entries(facts.unexpectedExits)) {
    for (const exit of exits) {
      out.push(`    t=${pad(s(exit.at), 6)} ${name} exited by itself (${exit.code ?? exit.signal})`);
    }
  }
  out.push('');
  const retried: Record<string, number> = {};
  for (const job of facts.jobs)
    for (const [why, count] of Object.entries(job.retried)) retried[why] = (retried[why] ?? 0) + count;
  out.push(
    `  client: ${summary.accepted}/${facts.n} accepted (202), ${summary.replayed} of them "Idempotent-Replayed", ${summary.unanswered} unanswered, ${summary.rejected} rejected; retries: ${
      Object.entries(retried)
        .map(([why, count]) => `${why} ${count}`)
        .join(', ') || 'none'
    }`,
  );
  out.push(
    `  smtp sink: ${facts.deliveries.length} emails for ${summary.delivered} jobs; ${summary.resent} resent (${summary.resentJobs} jobs), ${summary.resentAfterClientGone} committed after the sending worker was gone, ${summary.orphanEmails} for job ids no 202 named, ${summary.wrongMessageId} without the job's Message-ID`,
  );
  if (summary.lost > 0) {
    out.push(
      `  lost (status at the end: ${Object.entries(summary.lostByStatus)
        .map(([status, count]) => `${status} ${count}`)
        .join(
          ', ',
        )}): ${summary.lostIds.slice(0, 10).join(', ')}${summary.lost > 10 ? ` and ${summary.lost - 10} more` : ''}`,
    );
  }
  out.push(
    `  recovery: last email ${summary.recoveryS === undefined ? 'never (jobs missing)' : `${summary.recoveryS.toFixed(1)} s after the last fault`}, ${summary.tailS === undefined ? '' : `${summary.tailS.toFixed(1)} s after the last 202; `}${summary.slowJobs} job(s) took longer than 2 leases after max(their 202, the last fault)`,
  );
  out.push(
    `  job status at the end (GET /v1/jobs/:id): ${Object.entries(summary.statusCounts)
      .map(([status, count]) => `${status} ${count}`)
      .join(', ')}; not succeeded although the email arrived: ${summary.unfinishedDelivered}`,
  );
  out.push(
    `  shutdown (SIGTERM): ${facts.shutdown
      .map((r) => `${r.name} ${r.forced ? 'SIGKILLed after' : `exit ${r.code ?? r.signal} in`} ${s(r.ms)} s`)
      .join('; ')}`,
  );
  out.push('');
  out.push(tableHeader());
  out.push(tableRow(facts, summary));
  out.push('');
  out.push(
    `  verdict: ${summary.verdict.toUpperCase()}${summary.reasons.length ? `${summary.verdict === 'pass' ? ' (nothing lost), short of the target' : ''} — ${summary.reasons.join('; ')}` : ''}`,
  );
  return out.join('\n');
}

export function tableHeader(): string {
  return '| broker | N | lost | resent | recovery s | notes |\n|---|---|---|---|---|---|';
}

/** One row of the docs/reliability.md table. */
export function tableRow(facts: RunFacts, summary: Summary): string {
  const notes = [
    `in flight at kills ${summary.inFlightAtKills}`,
    `${summary.replayed} replayed 202s`,
    summary.crashes > 0 ? `${summary.crashes} unplanned exits` : '',
    summary.slowJobs > 0 ? `${summary.slowJobs} jobs later than 2 leases` : '',
    summary.unfinished > 0
      ? `${summary.unfinished} not \`succeeded\` at the end (${summary.unfinishedDelivered} of them delivered)`
      : '',
    summary.unanswered > 0 ? `${summary.unanswered} unanswered` : '',
    summary.orphanEmails > 0 ? `${summary.orphanEmails} emails for unknown ids` : '',
    !facts.atLeastOnce ? 'at-most-once (documented)' : '',
  ].filter(Boolean);
  const recovery =
    summary.recoveryS === undefined
      ? `not by end (+${s(facts.endAt - facts.faults.reduce((m, f) => Math.max(m, f.at), 0))})`
      : summary.recoveryS.toFixed(1);
  return `| ${facts.broker} | ${facts.n} | ${summary.lost} | ${summary.resent} | ${recovery} | ${notes.join('; ')} |`;
}
