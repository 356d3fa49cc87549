/**
 * The chaos run's report as text: the human report (the run, each fault, the counts, the
 * verdict) and the row of the docs/reliability.md table. What it shows is counted in report.ts.
 */
import { type Redelivery, type RunFacts, type Summary, s } from './report';
import { scheduleLine, scheduleNote } from './schedule-probe';

const pad = (text: string, width: number) => text.padEnd(width);

/** The human report: the run, each fault, the counts, the verdict. */
export function formatReport(facts: RunFacts, summary: Summary): string {
  const out: string[] = [];
  out.push('');
  out.push(
    `chaos: ${brokerLabel(facts)} at ${facts.commit}, N=${facts.n}, lease ${s(facts.leaseMs)} s (${facts.leaseIs}), run took ${facts.elapsedS.toFixed(0)} s`,
  );
  for (const note of facts.notes) out.push(`  note: ${note}`);
  out.push('');
  out.push('  faults (t = seconds since the first request):');
  for (const [index, f] of facts.faults.entries()) {
    out.push(
      `    t=${pad(s(f.at), 6)} ${pad(`${f.kind} ${f.target}`, 30)} back after ${pad(`${s(f.backAt - f.at)} s`, 8)} in flight ${pad(String(f.inFlight ?? '?'), 4)} smtp DATA open ${pad(String(f.smtpInProgress), 3)} backlog ${f.backlog}${f.markAt !== undefined && f.at - f.markAt >= 100 ? `  (mark t=${s(f.markAt)}, spaced)` : ''}${f.error ? `  ERROR ${f.error}` : ''}`,
    );
    if (f.detail) out.push(`      ${f.detail}`);
    for (const r of summary.redeliveries.filter((r) => r.fault === index))
      out.push(`    ${redeliveryLine(r, 2 * facts.leaseMs)}`);
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
    `  max redelivery: ${redeliveryCell(summary)} (the slowest job a worker kill or the broker restart interrupted, against 2 x lease ${summary.redeliveryTargetS.toFixed(1)} s)`,
  );
  out.push(
    `  job status at the end (GET /v1/jobs/:id): ${Object.entries(summary.statusCounts)
      .map(([status, count]) => `${status} ${count}`)
      .join(', ')}; not succeeded although the email arrived: ${summary.unfinishedDelivered}`,
  );
  if (facts.schedule && summary.schedule) out.push(`  ${scheduleLine(facts.schedule, summary.schedule)}`);
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

/** One fault's redelivery, for the report's fault list. */
export function redeliveryLine(r: Redelivery, targetMs?: number): string {
  const what =
    r.kind === 'kill-worker'
      ? `${r.target} kill interrupted ${r.jobIds.length} job(s) in SMTP (${r.jobIds.length - r.afterData} before DATA, ${r.afterData} after: committed, will be resent; gauge ${r.gauge ?? '?'} in flight)`
      : `${r.target} restart: ${r.jobIds.length} job(s) accepted and not yet delivered (less those a worker kill cut)`;
  const when =
    r.jobIds.length === 0
      ? ''
      : `; ${r.kind === 'kill-worker' ? 'delivered again' : 'delivered'} ${r.maxMs === undefined ? 'never' : `at most ${s(r.maxMs)} s after the ${r.kind === 'kill-worker' ? 'kill' : r.target.endsWith('failover') ? 'promoted replica served the slot' : 'broker accepted connections again'}`}${r.missing.length > 0 ? `, ${r.missing.length} not by the end (${r.missing.slice(0, 5).join(', ')})` : ''}`;
  const late = targetMs === undefined ? [] : Object.values(r.delays).filter((ms) => ms > targetMs);
  const lateText =
    late.length > 0 ? ` (${late.length} of ${r.jobIds.length} later than 2 leases, ${s(targetMs!)} s)` : '';
  const p = r.pending;
  const bound =
    p && p.jobs > 0
      ? `; all ${p.jobs} jobs pending at the kill had a first email within ${p.maxMs === undefined ? '—' : `${s(p.maxMs)} s`}${p.missing > 0 ? ` (${p.missing} none by the end)` : ''}`
      : '';
  return `  -> ${what}${when}${lateText}${bound}`;
}

/** "4.2 / 6.0 met", "13.0 / 6.0 not met", "— (2 not redelivered) / 6.0 not met", "none timed / 6.0 n/a". */
export function redeliveryCell(summary: Summary): string {
  const max =
    summary.notRedelivered > 0
      ? `— (${summary.notRedelivered} not redelivered)`
      : summary.maxRedeliveryS === undefined
        ? 'none timed'
        : summary.maxRedeliveryS.toFixed(1);
  const verdict = summary.redeliveryMet === undefined ? 'n/a' : summary.redeliveryMet ? 'met' : 'not met';
  return `${max} / ${summary.redeliveryTargetS.toFixed(1)} ${verdict}`;
}

export function tableHeader(): string {
  return '| broker | N | lost | resent | max redelivery s / 2 leases | recovery s | notes |\n|---|---|---|---|---|---|---|';
}

/** The broker's name, and "on a Redis Cluster" for a --redis-cluster run. */
export function brokerLabel(facts: RunFacts): string {
  return facts.options.redisCluster ? `${facts.broker} on a Redis Cluster` : facts.broker;
}

/** One row of the docs/reliability.md table. */
export function tableRow(facts: RunFacts, summary: Summary): string {
  const notes = [
    `in flight at kills ${summary.inFlightAtKills}`,
    `interrupted in SMTP ${summary.redeliveries
      .filter((r) => r.kind === 'kill-worker')
      .map((r) => `${r.jobIds.length}/${r.gauge ?? '?'}`)
      .join(' + ')} (of the gauge)`,
    `${summary.replayed} replayed 202s`,
    summary.crashes > 0 ? `${summary.crashes} unplanned exits` : '',
    summary.slowJobs > 0 ? `${summary.slowJobs} jobs later than 2 leases` : '',
    summary.unfinished > 0
      ? `${summary.unfinished} not \`succeeded\` at the end (${summary.unfinishedDelivered} of them delivered)`
      : '',
    summary.unanswered > 0 ? `${summary.unanswered} unanswered` : '',
    summary.orphanEmails > 0 ? `${summary.orphanEmails} emails for unknown ids` : '',
    summary.schedule ? scheduleNote(summary.schedule) : '',
    !facts.atLeastOnce ? 'at-most-once (documented)' : '',
  ].filter(Boolean);
  const recovery =
    summary.recoveryS === undefined
      ? `not by end (+${s(facts.endAt - facts.faults.reduce((m, f) => Math.max(m, f.at), 0))})`
      : summary.recoveryS.toFixed(1);
  return `| ${brokerLabel(facts)} | ${facts.n} | ${summary.lost} | ${summary.resent} | ${redeliveryCell(summary)} | ${recovery} | ${notes.join('; ')} |`;
}
