import { describe, expect, it } from 'vitest';
import type { PostedJob } from '../src/load-client';
import { type FaultRecord, MESSAGE_ID_DOMAIN, type RunFacts, summarize, tableRow } from '../src/report';
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

const email = (jobId: string, at: number, messageId = `<${jobId}@${MESSAGE_ID_DOMAIN}>`): SinkDelivery => ({
  at,
  jobId,
  messageId,
  clientGone: false,
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
      '| sqlite | 3 | 0 | 0 | 1.0 | in flight at kills 1; 0 replayed 202s |',
    );
  });
});
