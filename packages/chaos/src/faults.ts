/**
 * The chaos run's faults: the plan (kill worker 1, kill the API, restart the broker, kill
 * worker 2, at ~20/40/60/80 % of the jobs accepted), when each fires, and what each one's
 * record holds (what was in flight, the backlog, the SMTP transactions it interrupted).
 */
import type { BrokerName, BrokerServer, RestartResult } from './broker-servers';
import { isRestartResult } from './broker-servers';
import type { LoadClient } from './load-client';
import { type Service, sleep } from './processes';
import type { FaultRecord, Transaction } from './report';
import type { SinkTransaction, SmtpSink } from './smtp-sink';

/** The run's clocks: t0 is Date.now() at the start, now() ms since; records are on the client's clock. */
export interface RunClock {
  t0: number;
  clientStart: number;
  now: () => number;
}

/** Records one fault: `act` is the fault itself, `inFlight` what it interrupts (read just before). */
export type Inject = (
  kind: FaultRecord['kind'],
  target: string,
  inFlight: () => Promise<number | undefined>,
  act: () => Promise<unknown>,
) => Promise<void>;

export function faultInjector(run: {
  sink: SmtpSink;
  client: LoadClient;
  clock: RunClock;
  faults: FaultRecord[];
  say: (line: string) => void;
}): Inject {
  const { sink, client, faults, say } = run;
  const { t0, clientStart, now } = run.clock;
  const delivered = new Set<string>();
  const backlog = () => {
    delivered.clear();
    for (const d of sink.deliveries) delivered.add(d.jobId);
    return client.jobs.filter((j) => j.jobId !== undefined && !delivered.has(j.jobId)).length;
  };
  return async (kind, target, inFlight, act) => {
    const flying = await inFlight();
    const atRaw = now();
    const smtpOpen = sink.openTransactions();
    const pending = backlog();
    const record: FaultRecord = {
      kind,
      target,
      at: atRaw - clientStart,
      backAt: 0,
      inFlight: flying,
      smtpInProgress: sink.inProgress(),
      backlog: pending,
      backlogJobIds: client.jobs
        .filter((j) => j.jobId !== undefined && !delivered.has(j.jobId))
        .map((j) => j.jobId!),
      smtpOpen: smtpOpen.map((t) => shiftTransaction(t, clientStart)),
    };
    say(
      `t=${(record.at / 1000).toFixed(1)} s: ${kind} ${target} (in flight ${flying ?? '?'}, backlog ${record.backlog})`,
    );
    let result: RestartResult | undefined;
    try {
      const outcome = await act();
      if (isRestartResult(outcome)) result = outcome;
    } catch (error) {
      record.error = (error as Error).message;
      say(`  ${kind} ${target}: ${record.error}`);
    }
    // A failover is back when the promoted replica serves the slot, not when the old master rejoined.
    record.backAt = (result ? result.servingAt - t0 : now()) - clientStart;
    if (result) {
      record.detail = result.detail;
      say(`  ${result.detail}`);
    }
    // The killed sender's transactions: open at the fault, their connection closed before the
    // sink answered them (a live worker never drops a session mid-transaction).
    const openIds = new Set(smtpOpen.map((t) => t.sessionId));
    record.interrupted = sink.aborted
      .filter((t) => openIds.has(t.sessionId) && (t.abortedAt ?? 0) >= atRaw)
      .map((t) => shiftTransaction(t, clientStart));
    faults.push(record);
  };
}

export interface FaultStep {
  /** The share of the jobs accepted (and of the posting time) at which it fires. */
  share: number;
  fire: () => Promise<void>;
}

/** The four faults, in order. The broker restart is skipped where there is none (sqlite). */
export function faultPlan(run: {
  inject: Inject;
  api: Service;
  workers: Service[];
  broker: BrokerServer;
  brokerName: BrokerName;
  client: LoadClient;
}): FaultStep[] {
  const { inject, api, workers, broker, client } = run;
  const killWorker = (worker: Service) =>
    inject(
      'kill-worker',
      worker.name,
      () => worker.jobsInFlight(),
      async () => {
        await worker.kill();
        await worker.start();
      },
    );
  return [
    { share: 0.2, fire: () => killWorker(workers[0]!) },
    {
      share: 0.4,
      fire: () =>
        inject(
          'kill-api',
          'api',
          async () => client.outstanding(),
          async () => {
            await api.kill();
            await sleep(1_000);
            await api.start();
          },
        ),
    },
    {
      share: 0.6,
      fire: async () => {
        const restart = broker.restart;
        if (!restart) return;
        await inject(
          'restart-broker',
          broker.restartTarget ?? run.brokerName,
          async () => {
            const counts = await Promise.all(workers.map((w) => w.jobsInFlight()));
            return counts.every((c) => c === undefined)
              ? undefined
              : counts.reduce<number>((a, c) => a + (c ?? 0), 0);
          },
          restart,
        );
      },
    },
    { share: 0.8, fire: () => killWorker(workers[1]!) },
  ];
}

/**
 * Fires the plan's faults in order. Each fault waits for its mark (its share of the jobs
 * accepted, or of the posting time + 10 s) and for `gapMs` (2 leases) after the previous fault
 * completed (a worker restarted and ready, the API listening, the broker accepting connections
 * again), so that no fault lands on the previous one's recovery: the target is every
 * job delivered within 2 leases of the last one.
 */
export async function runFaults(
  plan: FaultStep[],
  faults: FaultRecord[],
  run: {
    client: LoadClient;
    clock: RunClock;
    postingMs: number;
    n: number;
    gapMs: number;
    say: (line: string) => void;
  },
): Promise<void> {
  const { client, postingMs, n, gapMs, say } = run;
  const { clientStart, now } = run.clock;
  let previousDone: number | undefined; // client clock
  for (const step of plan) {
    const byTime = clientStart + step.share * postingMs + 10_000;
    while (client.accepted() < step.share * n && now() < byTime) await sleep(50);
    const markAt = now() - clientStart;
    const notBefore = previousDone === undefined ? 0 : previousDone + gapMs;
    if (markAt < notBefore) {
      say(
        `  ${(step.share * 100).toFixed(0)} % mark at t=${(markAt / 1000).toFixed(1)} s; waiting for t=${(notBefore / 1000).toFixed(1)} s (previous fault done at t=${(previousDone! / 1000).toFixed(1)} s + 2 leases)`,
      );
      while (now() - clientStart < notBefore) await sleep(50);
    }
    const before = faults.length;
    await step.fire();
    const record = faults[before];
    if (record) {
      record.markAt = markAt;
      say(
        `  ${record.kind} ${record.target}: mark t=${(markAt / 1000).toFixed(1)} s, fired t=${(record.at / 1000).toFixed(1)} s, done t=${(record.backAt / 1000).toFixed(1)} s` +
          (previousDone === undefined
            ? ''
            : `, ${((record.at - previousDone) / 1000).toFixed(1)} s after the previous fault was done`),
      );
      previousDone = record.backAt;
    }
  }
}

/** A sink transaction on the client's clock (the job id is filled in at the end: its 202 may come later). */
function shiftTransaction(t: SinkTransaction, clientStart: number): Transaction {
  return {
    rcpt: t.rcpt,
    stage: t.stage,
    rcptAt: t.rcptAt - clientStart,
    ...(t.abortedAt !== undefined ? { abortedAt: t.abortedAt - clientStart } : {}),
  };
}
