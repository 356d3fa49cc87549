import { createMetricsHistory } from '@polyqueue/brokers';
import {
  errorMessage,
  HistoryTally,
  type Logger,
  type MetricsHistory,
  MINUTE_MS,
  minuteOf,
  type OutcomeEvent,
} from '@polyqueue/core';
import { Gauge, type Registry } from 'prom-client';

/** What the job recorder tells about each outcome (createJobRecorder's `history`). */
export interface OutcomeObserver {
  observe(event: OutcomeEvent): void;
}

export interface OutcomeHistoryOptions {
  stateUrl: string;
  env: Record<string, string | undefined>;
  logger: Logger;
  /** Where polyqueue_job_wait_max_seconds is registered (the process's /metrics). */
  registry?: Registry;
  /** An open history instead of one from stateUrl (tests); left open by stop(). */
  history?: MetricsHistory;
  flushMs?: number;
}

/**
 * A worker process's part of the dashboard's charts (GET /v1/queues/:q/history): each outcome
 * is counted in memory (HistoryTally) and written to the state store every few seconds in one
 * round trip. Counted: succeeded as completed; retrying and dead as failed; a first attempt's
 * wait (now minus the envelope's createdAt) when it starts. The same wait is exported to
 * Prometheus as polyqueue_job_wait_max_seconds{queue}: the longest wait among the jobs this
 * process started in the current minute. A history that cannot be opened or written is
 * logged, never fatal: the jobs matter more.
 */
export async function startOutcomeHistory(
  options: OutcomeHistoryOptions,
): Promise<OutcomeObserver & { stop(): Promise<void> }> {
  let history = options.history;
  try {
    history ??= await createMetricsHistory(options.stateUrl, options.env);
  } catch (error) {
    options.logger.warn({ err: errorMessage(error) }, 'no throughput history: the store did not open');
    return { observe: () => {}, stop: async () => {} };
  }
  let warned = false;
  const tally = new HistoryTally(history, {
    ...(options.flushMs ? { flushMs: options.flushMs } : {}),
    onError: (error) => {
      // Once per process: the counts are kept for the next flush, and /readyz reports an outage.
      if (!warned) options.logger.warn({ err: errorMessage(error) }, 'a throughput history flush failed');
      warned = true;
    },
  });
  const waitGauge = options.registry ? waitMaxGauge(options.registry) : undefined;
  const opened = history;
  return {
    observe(event) {
      tallyOutcome(tally, event);
      if (waitGauge && event.outcome === 'processing' && event.attempt === 1 && event.envelope)
        waitGauge(event.queue, Date.now() - Date.parse(event.envelope.createdAt));
    },
    async stop() {
      await tally.stop();
      if (!options.history) await opened.close().catch(() => {});
    },
  };
}

/** An outcome into the tally: which count it adds to, or the wait of a job that starts. */
export function tallyOutcome(tally: HistoryTally, event: OutcomeEvent): void {
  if (event.outcome === 'succeeded') tally.completed(event.queue);
  else if (event.outcome === 'retrying' || event.outcome === 'dead') tally.failed(event.queue);
  // A retry's envelope keeps its first createdAt: its backoff is not waiting in line.
  else if (event.outcome === 'processing' && event.attempt === 1 && event.envelope)
    tally.waited(event.queue, event.envelope.createdAt);
}

/** polyqueue_job_wait_max_seconds{queue}: the greatest wait in the current minute, reset each minute. */
function waitMaxGauge(registry: Registry): (queue: string, waitMs: number) => void {
  const current = new Map<string, { minute: number; max: number }>();
  const gauge = new Gauge({
    name: 'polyqueue_job_wait_max_seconds',
    help: 'Longest time a job started by this process in the current minute had waited since it was created',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      // A minute is shown until the end of the next one (so a scrape sees it), then dropped:
      // a queue nobody takes from has no sample rather than a stale one.
      const minute = minuteOf(Date.now());
      for (const [queue, seen] of current)
        if (seen.minute < minute - MINUTE_MS) {
          current.delete(queue);
          this.remove({ queue });
        }
    },
  });
  return (queue, waitMs) => {
    const minute = minuteOf(Date.now());
    const seen = current.get(queue);
    const max = seen && seen.minute === minute ? Math.max(seen.max, waitMs) : waitMs;
    current.set(queue, { minute, max });
    gauge.set({ queue }, Math.max(0, max) / 1000);
  };
}
