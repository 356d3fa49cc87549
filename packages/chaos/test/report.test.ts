import { describe, expect, it } from 'vitest';
import type { PostedJob } from '../src/load-client';
import { peakInWindow } from '../src/rate-limit-probe';
import {
  type FaultRecord,
  MESSAGE_ID_DOMAIN,
  type RunFacts,
  redeliveries,
  summarize,
  type Transaction,
  withJobIds,
} from '../src/report';
import { formatReport, tableRow } from '../src/report-text';
import { type ScheduleFacts, scheduleLine, type TickFact } from '../src/schedule-probe';
import type { SinkDelivery } from '../src/smtp-sink';

const job = (index: number, acceptedAt?: number, extra: Partial<PostedJob> = {}): PostedJob => ({
  index,
  key: `k${index}`,
  ...(acceptedAt !== undefined ? { jobId: `job-${index}`, acceptedAt } : {}),
  replayed: false,
  attempts: 1,
  retried: {},
  ...extra,
});

const email = (
  jobId: string,
  at: number,
  messageId = `<${jobId}@${MESSAGE_ID_DOMAIN}>`,
  extra: Partial<SinkDelivery> = {},
): SinkDelivery => ({
  at,
  jobId,
  messageId,
  clientGone: false,
  ...extra,
});

/** An SMTP transaction for job <index> (RCPT TO user<index>@...), as the sink records it. */
const tx = (index: number, rcptAt: number, stage: Transaction['stage'], abortedAt?: number): Transaction => ({
  rcpt: `user${index}@chaos.test`,
  rcptAt,
  stage,
  ...(abortedAt !== undefined ? { abortedAt } : {}),
});

const fault = (kind: FaultRecord['kind'], at: number, inFlight: number): FaultRecord => ({
  kind,
  target: kind,
  at,
  backAt: at + 1_000,
  inFlight,
  smtpInProgress: 0,
  backlog: 0,
});

function facts(overrides: Partial<RunFacts>): RunFacts {
  return {
    broker: 'sqlite',
    atLeastOnce: true,
    leaseMs: 3_000,
    leaseIs: 'SQLITE_LEASE_MS',
    commit: 'abc1234',
    n: 3,
    jobs: [],
    deliveries: [],
    faults: [],
    clientDoneAt: 0,
    endAt: 60_000,
    unexpectedExits: {},
    shutdown: [],
    statuses: {},
    notes: [],
    elapsedS: 60,
    options: {},
    ...overrides,
  };
}

describe('summarize', () => {
  it('counts a job with no email as lost and fails an at-least-once broker', () => {
    const summary = summarize(
      facts({
        jobs: [job(0, 100), job(1, 200), job(2, 300)],
        deliveries: [email('job-0', 1_000), email('job-1', 1_500)],
        faults: [fault('kill-worker', 400, 2)],
      }),
    );
    expect(summary.lost).toBe(1);
    expect(summary.lostIds).toEqual(['job-2']);
    expect(summary.recoveryS).toBeUndefined();
    expect(summary.verdict).toBe('fail');
  });

  it('reports losses without failing when the broker is at-most-once', () => {
    const summary = summarize(
      facts({ atLeastOnce: false, jobs: [job(0, 100)], faults: [fault('kill-worker', 50, 1)] }),
    );
    expect(summary.lost).toBe(1);
    expect(summary.verdict).toBe('at-most-once');
  });

  it('counts every email beyond the first per job as resent, and recovery from the last fault', () => {
    const summary = summarize(
      facts({
        jobs: [job(0, 100), job(1, 200), job(2, 300)],
        deliveries: [
          email('job-0', 1_000),
          email('job-1', 1_100),
          email('job-0', 4_000),
          email('job-2', 6_500),
          email('job-0', 7_000),
        ],
        faults: [
          fault('kill-worker', 500, 1),
          fault('restart-broker', 2_500, 1),
          fault('kill-api', 3_000, 9),
        ],
      }),
    );
    expect(summary).toMatchObject({ lost: 0, resent: 2, resentJobs: 1, inFlightAtKills: 2, verdict: 'pass' });
    expect(summary.recoveryS).toBeCloseTo(3.5);
    // The API's in-flight requests are not jobs that a kill can make resend.
    expect(summary.reasons).toEqual([]);
  });

  it('fails on an email without its job Message-ID and on a request never answered', () => {
    const summary = summarize(
      facts({
        jobs: [job(0, 100), job(1)],
        deliveries: [email('job-0', 1_000, '<random@elsewhere>')],
      }),
    );
    expect(summary).toMatchObject({ wrongMessageId: 1, unanswered: 1, verdict: 'fail' });
  });

  it('names emails for job ids no 202 returned, and replayed answers', () => {
    const summary = summarize(
      facts({
        jobs: [job(0, 100, { replayed: true })],
        deliveries: [email('job-0', 1_000), email('phantom', 1_200)],
      }),
    );
    expect(summary).toMatchObject({ orphanEmails: 1, replayed: 1, lost: 0 });
  });

  it('renders one markdown table row', () => {
    const f = facts({
      jobs: [job(0, 100)],
      deliveries: [email('job-0', 1_000)],
      faults: [fault('kill-worker', 0, 1)],
    });
    expect(tableRow(f, summarize(f))).toBe(
      '| sqlite | 3 | 0 | 0 | none timed / 6.0 n/a | 1.0 | in flight at kills 1; interrupted in SMTP 0/1 (of the gauge); 0 replayed 202s |',
    );
  });
});

describe('the schedule active during the run', () => {
  const tick = (at: number, fired: boolean, emails: number): TickFact => ({
    tick: new Date(1_000_000 + at).toISOString(),
    at,
    fired,
    jobIds: emails > 0 ? [`tick-${at}`] : [],
    emails,
  });
  const schedule = (ticks: TickFact[]): ScheduleFacts => ({
    name: 'chaos-x',
    everyMs: 1_000,
    createdAt: 0,
    deletedAt: 10_000,
    ticks,
  });

  it('counts a tick due within a scheduler pass before an API kill as skipped in the fault', () => {
    const f = facts({
      jobs: [job(0, 100)],
      deliveries: [email('job-0', 1_000)],
      faults: [fault('kill-api', 3_200, 0)],
      schedule: schedule([
        tick(1_000, true, 1),
        tick(2_000, true, 1),
        tick(3_000, false, 0),
        tick(4_000, true, 1),
      ]),
    });
    expect(summarize(f).schedule).toMatchObject({ skippedInFaults: 1, skippedOtherwise: 0 });
  });

  it('counts each fired tick once, resent or lost, and tells ticks skipped in a fault from others', () => {
    const f = facts({
      jobs: [job(0, 100)],
      deliveries: [email('job-0', 1_000)],
      // The API is down from t=3 s to t=4 s: ticks up to 2 s after it may pass unfired.
      faults: [fault('kill-api', 3_000, 0)],
      schedule: schedule([
        tick(1_000, true, 1),
        tick(2_000, true, 2),
        tick(3_000, false, 0),
        tick(5_000, false, 0),
        tick(6_000, true, 1),
        tick(8_000, false, 0),
      ]),
    });
    const summary = summarize(f);
    expect(summary.schedule).toEqual({
      ticks: 6,
      fired: 3,
      once: 2,
      resent: 1,
      lost: 0,
      skippedInFaults: 2,
      skippedOtherwise: 1,
      skippedOtherwiseAt: [8_000],
    });
    expect(summary.verdict).toBe('pass');
    expect(summary.reasons).toContain('1 schedule tick(s) not fired with no fault near');
    expect(scheduleLine(f.schedule!, summary.schedule!)).toContain('1 otherwise (due at t=8.0)');
    expect(tableRow(f, summary)).toContain(
      'schedule 3/6 ticks fired, 0 lost, 1 resent, 1 skipped outside faults',
    );
    expect(formatReport(f, summary)).toContain(
      'schedule: every 1.0 s from t=0.0 to t=10.0: 6 ticks, 3 fired, 2 delivered exactly once, 1 resent, 0 lost',
    );
  });

  it('fails an at-least-once broker on a fired tick whose email never came', () => {
    const f = facts({
      jobs: [job(0, 100)],
      deliveries: [email('job-0', 1_000)],
      schedule: schedule([tick(1_000, true, 1), tick(2_000, true, 0)]),
    });
    const summary = summarize(f);
    expect(summary.schedule).toMatchObject({ fired: 2, lost: 1 });
    expect(summary.verdict).toBe('fail');
    expect(summary.reasons).toContain('1 fired schedule tick(s) never delivered');
  });
});

describe('redelivery after a fault', () => {
  // Worker kill at t=10 s: job 0 was before DATA (nothing sent), job 1 past DATA (the sink
  // commits it anyway at 10.2 s), job 2 open on the other worker's connection (not aborted).
  const kill: FaultRecord = {
    ...fault('kill-worker', 10_000, 3),
    smtpOpen: [tx(0, 9_900, 'rcpt'), tx(1, 9_700, 'data'), tx(2, 9_950, 'rcpt')],
    interrupted: [tx(0, 9_900, 'rcpt', 10_050), tx(1, 9_700, 'data', 10_050)],
  };
  // Broker restart at t=20 s, accepting again at 24 s: jobs 3, 4, 5 accepted and undelivered.
  const restart: FaultRecord = {
    ...fault('restart-broker', 20_000, 2),
    backAt: 24_000,
    backlogJobIds: ['job-3', 'job-4', 'job-5'],
  };
  const jobs = [job(0, 9_000), job(1, 8_000), job(2, 9_500), job(3, 19_000), job(4, 19_500), job(5, 19_800)];
  const deliveries = [
    email('job-1', 10_200, undefined, { rcptAt: 9_700, clientGone: true }), // committed after the kill
    email('job-2', 10_300, undefined, { rcptAt: 9_950 }),
    email('job-4', 21_000, undefined, { rcptAt: 20_500 }), // while the broker was away
    email('job-0', 15_000, undefined, { rcptAt: 14_700 }), // the re-run, 5 s after the kill
    email('job-1', 16_400, undefined, { rcptAt: 16_100 }), // the resend, 6.4 s after the kill
    email('job-3', 26_000, undefined, { rcptAt: 25_700 }),
    email('job-5', 27_500, undefined, { rcptAt: 27_200 }),
  ];

  it('counts a kill from the SIGKILL to each interrupted job next email from a new transaction', () => {
    const [r] = redeliveries(facts({ jobs, deliveries, faults: [kill] }));
    expect(r).toMatchObject({
      fault: 0,
      kind: 'kill-worker',
      from: 10_000,
      afterData: 1,
      gauge: 3,
      missing: [],
    });
    expect(r!.jobIds.sort()).toEqual(['job-0', 'job-1']);
    // job-1's copy committed at 10.2 s was begun before the kill: the resend at 16.4 s counts.
    expect(r!.delays).toEqual({ 'job-0': 5_000, 'job-1': 6_400 });
    expect(r!.maxMs).toBe(6_400);
    expect(r!.pending).toEqual({ jobs: 0, maxMs: undefined, missing: 0 }); // no backlog recorded
    const withBacklog = { ...kill, backlogJobIds: ['job-0', 'job-2', 'job-3'] };
    const [b] = redeliveries(facts({ jobs, deliveries, faults: [withBacklog] }));
    // job-2 first email 0.3 s after the kill, job-0 5 s, job-3 16 s: the bound includes the backlog.
    expect(b!.pending).toEqual({ jobs: 3, maxMs: 16_000, missing: 0 });
  });

  it('counts a restart from the broker accepting again to each pending job first email', () => {
    const [r] = redeliveries(facts({ jobs, deliveries, faults: [restart] }));
    expect(r).toMatchObject({ kind: 'restart-broker', from: 24_000, afterData: 0, missing: [] });
    expect(r!.delays).toEqual({ 'job-3': 2_000, 'job-4': 0, 'job-5': 3_500 });
    expect(r!.maxMs).toBe(3_500);
    // A job pending at the restart that a worker kill then cut is timed from that kill only.
    const cut = { ...kill, at: 25_000, interrupted: [tx(5, 24_900, 'rcpt', 25_050)] };
    const [later, k] = redeliveries(facts({ jobs, deliveries, faults: [restart, cut] }));
    expect(later!.jobIds).toEqual(['job-3', 'job-4']);
    expect(k!.delays).toEqual({ 'job-5': 2_500 });
  });

  it('takes the largest over all faults, ignores the API kill, and compares it with 2 leases', () => {
    const summary = summarize(
      facts({ jobs, deliveries, faults: [kill, fault('kill-api', 12_000, 5), restart], n: 6 }),
    );
    expect(summary.redeliveries.map((r) => r.kind)).toEqual(['kill-worker', 'restart-broker']);
    expect(summary).toMatchObject({
      maxRedeliveryS: 6.4,
      redeliveryTargetS: 6,
      notRedelivered: 0,
      redeliveryMet: false,
      lost: 0,
      verdict: 'pass',
    });
    expect(summary.reasons).toContain('max redelivery 6.4 s > 2 leases (6.0 s)');
    const f = facts({ jobs, deliveries, faults: [kill, restart], n: 6 });
    expect(tableRow(f, summarize(f))).toContain('| 6.4 / 6.0 not met |');
    const report = formatReport(f, summarize(f));
    expect(report).toContain(
      'kill-worker kill interrupted 2 job(s) in SMTP (1 before DATA, 1 after: committed, will be resent; gauge 3 in flight); delivered again at most 6.4 s after the kill (1 of 2 later than 2 leases, 6.0 s)',
    );
    expect(report).toContain('max redelivery: 6.4 / 6.0 not met');
  });

  it('meets the target when the slowest interrupted job came back within 2 leases', () => {
    const summary = summarize(facts({ jobs, deliveries, faults: [kill, restart], leaseMs: 3_500 }));
    expect(summary).toMatchObject({ maxRedeliveryS: 6.4, redeliveryTargetS: 7, redeliveryMet: true });
  });

  it('counts an interrupted job with no later email as not redelivered, even if its aborted DATA was committed', () => {
    const f = facts({
      jobs,
      deliveries: deliveries.filter((d) => !(d.jobId === 'job-1' && d.at > 11_000)),
      faults: [kill],
    });
    const summary = summarize(f);
    expect(summary).toMatchObject({ notRedelivered: 1, maxRedeliveryS: 5, redeliveryMet: false, lost: 0 });
    expect(summary.redeliveries[0]!.missing).toEqual(['job-1']);
    // A job cut by both kills (its re-run cut again) and never sent counts once.
    const again = { ...kill, at: 12_000, interrupted: [tx(0, 11_900, 'rcpt', 12_050)] };
    const twice = summarize(
      facts({
        jobs,
        deliveries: deliveries.filter((d) => d.jobId !== 'job-0'),
        faults: [kill, again],
      }),
    );
    expect(twice.redeliveries.map((r) => r.missing)).toEqual([['job-0'], ['job-0']]);
    expect(twice).toMatchObject({ notRedelivered: 1, lost: 1, verdict: 'fail' });
    expect(tableRow(f, summary)).toContain('| — (1 not redelivered) / 6.0 not met |');
  });

  it('never meets the target on an at-most-once broker', () => {
    const summary = summarize(facts({ atLeastOnce: false, jobs, deliveries, faults: [restart] }));
    expect(summary).toMatchObject({ maxRedeliveryS: 3.5, redeliveryMet: false });
  });

  it('names the job of a transaction by its RCPT TO once the 202 is known', () => {
    const filled = withJobIds(kill, jobs);
    expect(filled.interrupted!.map((t) => t.jobId)).toEqual(['job-0', 'job-1']);
    expect(filled.smtpOpen!.map((t) => t.jobId)).toEqual(['job-0', 'job-1', 'job-2']);
    expect(withJobIds(fault('kill-api', 0, 1), jobs)).toEqual(fault('kill-api', 0, 1));
  });
});

describe('peakInWindow', () => {
  it('counts the most times inside any window', () => {
    expect(peakInWindow([], 1_000)).toBe(0);
    expect(peakInWindow([0, 100, 999, 1_000, 1_500, 1_600, 1_700], 1_000)).toBe(5);
  });
});
