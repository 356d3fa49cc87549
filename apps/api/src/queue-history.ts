/**
 * A queue's throughput and waiting time over the last hours, as evenly spaced points for the
 * dashboard's charts (GET /v1/queues/:q/history): from the state store's per-minute history
 * (core's MetricsHistory, written by the workers), or, with PROMETHEUS_URL, from Prometheus'
 * query_range API over the metrics the workers export (polyqueue_jobs_processed_total,
 * polyqueue_job_wait_max_seconds). Both answer the same shape.
 */
import { type MetricsHistory, MINUTE_MS, maxWait } from '@polyqueue/core';

export interface HistoryPoint {
  /** The bucket's start, ISO 8601; the bucket lasts stepSeconds. */
  at: string;
  /** Jobs that succeeded in the bucket. */
  completed: number;
  /** Attempts that failed in the bucket (retried later or dead-lettered). */
  failed: number;
  /** The longest a job taken in the bucket had waited; null when none was taken. */
  oldestWaitMs: number | null;
}

export interface QueueHistory {
  queue: string;
  source: 'state' | 'prometheus';
  hours: number;
  stepSeconds: number;
  from: string;
  to: string;
  points: HistoryPoint[];
}

export interface HistoryWindow {
  /** The first bucket's start (ms). */
  from: number;
  /** The end of the last bucket (ms): the end of the current minute, rounded up to a step. */
  to: number;
  stepMs: number;
}

/** Minute points up to 6 h, 5-minute ones up to 24 h, 10-minute ones beyond: at most 288 points. */
export function historyWindow(hours: number, now: number): HistoryWindow {
  const stepMs = (hours <= 6 ? 1 : hours <= 24 ? 5 : 10) * MINUTE_MS;
  const to = Math.ceil((now + 1) / stepMs) * stepMs;
  return { from: to - hours * 3_600_000, to, stepMs };
}

function emptyPoints(window: HistoryWindow): HistoryPoint[] {
  const points: HistoryPoint[] = [];
  for (let at = window.from; at < window.to; at += window.stepMs)
    points.push({ at: new Date(at).toISOString(), completed: 0, failed: 0, oldestWaitMs: null });
  return points;
}

/** The state store's minutes, summed into the window's buckets (greatest wait per bucket). */
export async function historyFromStore(
  history: Pick<MetricsHistory, 'read'>,
  queue: string,
  window: HistoryWindow,
): Promise<HistoryPoint[]> {
  const points = emptyPoints(window);
  for (const minute of await history.read(queue, window.from, window.to)) {
    const point = points[Math.floor((minute.minute - window.from) / window.stepMs)];
    if (!point) continue;
    point.completed += minute.completed;
    point.failed += minute.failed;
    point.oldestWaitMs = maxWait(point.oldestWaitMs, minute.oldestWaitMs);
  }
  return points;
}

/** Thrown when Prometheus does not answer or answers an error: the route's 502. */
export class PrometheusError extends Error {
  override name = 'PrometheusError';
}

interface QueryRangeAnswer {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; values: [number, string][] }[] };
}

/**
 * The same points from Prometheus: three query_range calls evaluated at each bucket's end over
 * a range of one step, so each value covers exactly its bucket. Counters are summed over every
 * worker process (increase() extrapolates, so counts are rounded); the wait is the greatest.
 */
export async function historyFromPrometheus(
  prometheusUrl: string,
  queue: string,
  window: HistoryWindow,
  fetchImpl: typeof fetch = fetch,
): Promise<HistoryPoint[]> {
  const range = `${window.stepMs / 1000}s`;
  const selector = (extra: string) => `{queue=${JSON.stringify(queue)}${extra}}`;
  const queries = {
    completed: `sum(increase(polyqueue_jobs_processed_total${selector(',outcome="succeeded"')}[${range}]))`,
    failed: `sum(increase(polyqueue_jobs_processed_total${selector(',outcome=~"retrying|dead"')}[${range}]))`,
    wait: `max(max_over_time(polyqueue_job_wait_max_seconds${selector('')}[${range}]))`,
  };
  const [completed, failed, wait] = await Promise.all(
    Object.values(queries).map((query) => queryRange(prometheusUrl, query, window, fetchImpl)),
  );
  const points = emptyPoints(window);
  const at = (evaluatedAt: number) =>
    points[Math.round((evaluatedAt - window.stepMs - window.from) / window.stepMs)];
  for (const [t, v] of completed!) {
    const point = at(t);
    if (point) point.completed = Math.round(v);
  }
  for (const [t, v] of failed!) {
    const point = at(t);
    if (point) point.failed = Math.round(v);
  }
  for (const [t, v] of wait!) {
    const point = at(t);
    if (point) point.oldestWaitMs = Math.round(v * 1000);
  }
  return points;
}

/** One query_range call -> [evaluation time in ms, value] of its single series (none: []). */
async function queryRange(
  prometheusUrl: string,
  query: string,
  window: HistoryWindow,
  fetchImpl: typeof fetch,
): Promise<[number, number][]> {
  const url = new URL(
    'api/v1/query_range',
    prometheusUrl.endsWith('/') ? prometheusUrl : `${prometheusUrl}/`,
  );
  url.search = new URLSearchParams({
    query,
    start: String((window.from + window.stepMs) / 1000),
    end: String(window.to / 1000),
    step: String(window.stepMs / 1000),
  }).toString();
  let answer: QueryRangeAnswer;
  try {
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(10_000) });
    answer = (await res.json()) as QueryRangeAnswer;
  } catch (error) {
    throw new PrometheusError(`Prometheus at ${url.origin} did not answer: ${(error as Error).message}`);
  }
  if (answer.status !== 'success' || !answer.data)
    throw new PrometheusError(`Prometheus at ${url.origin} answered an error: ${answer.error ?? 'no data'}`);
  const series = answer.data.result[0];
  if (!series) return [];
  return series.values
    .map(([t, v]) => [Math.round(t * 1000), Number(v)] as [number, number])
    .filter(([, v]) => Number.isFinite(v));
}
