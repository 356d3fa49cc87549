/**
 * The chaos harness itself, end to end on the embedded sqlite broker with a few jobs: real
 * processes, a real SMTP server, real SIGKILLs. Bounded (about 40 s in all) so it can run with
 * every `npm test`. It checks the harness (every request answered, every fault injected, every
 * email carrying its job's Message-ID, a baseline with nothing lost or resent), not the drivers'
 * recovery: `npm run chaos -- --broker <name>` measures that (docs/reliability.md).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChaosHandle, type ChaosOptions, runChaos } from '../src/chaos-run';
import { killAllChildren } from '../src/processes';
import { summarize } from '../src/report';
import { TICK_RECIPIENT } from '../src/schedule-probe';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../../..');

const base: ChaosOptions = {
  broker: 'sqlite',
  n: 20,
  concurrency: 8,
  ratePerS: 20,
  smtpDelayMs: 100,
  leaseMs: 2_000,
  workerConcurrency: 2,
  settleS: 5,
  requestTimeoutMs: 5_000,
  drainTimeoutMs: 5_000,
  repoRoot,
  keep: false,
  noFaults: false,
  schedule: true,
};

let handle: ChaosHandle | undefined;
const lines: string[] = [];
const run = (options: Partial<ChaosOptions>) =>
  runChaos(
    { ...base, ...options },
    (line) => lines.push(line),
    (h) => {
      handle = h;
    },
  );

afterEach(async () => {
  await handle?.abort().catch(() => {});
  killAllChildren();
  lines.length = 0;
});

describe('chaos harness on sqlite', () => {
  it('a baseline without faults: every job accepted, delivered once, services drain on SIGTERM', async () => {
    // Posting for about 3.3 s keeps the schedule (an email a second, live while the client
    // posts) up for at least two whole ticks, wherever the run starts within a second.
    const facts = await run({ noFaults: true, ratePerS: 6 });
    const summary = summarize(facts);
    expect(summary, lines.join('\n')).toMatchObject({
      accepted: 20,
      delivered: 20,
      lost: 0,
      resent: 0,
      unanswered: 0,
      wrongMessageId: 0,
      orphanEmails: 0,
      verdict: 'pass',
    });
    expect(summary.statusCounts).toEqual({ succeeded: 20 });
    // The schedule's emails are counted per tick, apart from the client's (no orphans above).
    expect(summary.schedule, lines.join('\n')).toMatchObject({ lost: 0, resent: 0, skippedOtherwise: 0 });
    expect(summary.schedule!.fired).toBe(summary.schedule!.ticks);
    expect(summary.schedule!.ticks).toBeGreaterThanOrEqual(1);
    expect(facts.shutdown.map((s) => [s.name, s.code])).toEqual([
      ['api', 0],
      ['email-worker-1', 0],
      ['email-worker-2', 0],
    ]);
  }, 60_000);

  it('with faults: both workers and the API SIGKILLed, every request still answered with its key', async () => {
    // A rate limit on the queue through the faults too (issue 16): it slows jobs, loses none.
    const facts = await run({ n: 40, rateLimitPerS: 20 });
    const summary = summarize(facts);
    expect(facts.faults.map((f) => `${f.kind} ${f.target}`)).toEqual([
      'kill-worker email-worker-1',
      'kill-api api',
      'kill-worker email-worker-2',
    ]);
    expect(facts.faults.every((f) => f.error === undefined)).toBe(true);
    expect(summary, lines.join('\n')).toMatchObject({
      accepted: 40,
      unanswered: 0,
      rejected: 0,
      wrongMessageId: 0,
    });
    expect(facts.notes).toContain('embedded file: no broker restart');
    expect(facts.notes).toContain('rate limit 20/s on queue email (PUT /v1/queues/email/limits)');
    // Each kill records what was pending and which SMTP transactions it cut, by job id. A kill
    // can also cut the schedule's email (1 run in 12 here): it names no client job, and the
    // schedule's own count below says whether that tick was delivered.
    const accepted = new Set(facts.jobs.map((j) => j.jobId));
    for (const f of facts.faults) {
      expect(Array.isArray(f.backlogJobIds) && Array.isArray(f.smtpOpen)).toBe(true);
      for (const t of f.interrupted ?? []) {
        if (t.rcpt === TICK_RECIPIENT) expect(t.jobId, JSON.stringify(t)).toBeUndefined();
        else expect(accepted.has(t.jobId!), JSON.stringify(t)).toBe(true);
      }
    }
    expect(summary.redeliveries.map((r) => r.kind)).toEqual(['kill-worker', 'kill-worker']);
    expect(summary.redeliveryTargetS).toBe(4);
    expect(summary.schedule, lines.join('\n')).toMatchObject({ lost: 0 });
  }, 90_000);
});
