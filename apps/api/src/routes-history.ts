import type { MetricsHistory } from '@polyqueue/core';
import { jobQueues } from '@polyqueue/jobs';
import { Router } from 'express';
import { bearerAuth } from './http';
import { HttpProblem, problems } from './problem';
import {
  type HistoryPoint,
  historyFromPrometheus,
  historyFromStore,
  historyWindow,
  PrometheusError,
  type QueueHistory,
} from './queue-history';

export interface HistoryRoutesDeps {
  /** The workers' per-minute history (STATE_URL's backend). */
  history?: MetricsHistory | undefined;
  /** PROMETHEUS_URL: when set, the points come from Prometheus instead of the state store. */
  prometheusUrl?: string | undefined;
  apiToken?: string | undefined;
  now?: () => Date;
  /** Prometheus is called through it (tests). */
  fetch?: typeof fetch;
}

export const MAX_HISTORY_HOURS = 48;

/**
 * GET /v1/queues/:queue/history?hours=24 (1 to 48): completed jobs, failed attempts and the
 * longest wait of a job taken, per bucket (1 minute up to 6 h, 5 minutes up to 24 h, 10 beyond),
 * every bucket present. The dashboard's overview charts. 404 for an unknown queue, 422 for bad
 * hours, 501 with neither a history store nor PROMETHEUS_URL, 502 when Prometheus fails.
 */
export function historyRoutes(deps: HistoryRoutesDeps): Router {
  const router = Router();
  router.get('/v1/queues/:queue/history', bearerAuth(deps.apiToken), async (req, res) => {
    const queue = req.params.queue as string;
    if (!(jobQueues as readonly string[]).includes(queue))
      throw problems.notFound(`no queue ${JSON.stringify(queue)}; the queues are ${jobQueues.join(', ')}`);
    const raw = req.query.hours ?? '24';
    const hours = typeof raw === 'string' && /^\d{1,2}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(hours >= 1 && hours <= MAX_HISTORY_HOURS))
      throw problems.validation(
        [
          {
            field: 'hours',
            message: `a whole number from 1 to ${MAX_HISTORY_HOURS} (got ${JSON.stringify(raw)})`,
          },
        ],
        'invalid query',
      );
    const window = historyWindow(hours, (deps.now?.() ?? new Date()).getTime());
    let points: HistoryPoint[];
    let source: QueueHistory['source'];
    if (deps.prometheusUrl) {
      source = 'prometheus';
      try {
        points = await historyFromPrometheus(deps.prometheusUrl, queue, window, deps.fetch);
      } catch (error) {
        if (error instanceof PrometheusError) throw new HttpProblem(502, 'prometheus-failed', error.message);
        throw error;
      }
    } else if (deps.history) {
      source = 'state';
      points = await historyFromStore(deps.history, queue, window);
    } else {
      throw new HttpProblem(
        501,
        'not-implemented',
        'this API has no history store (STATE_URL) nor PROMETHEUS_URL',
      );
    }
    const body: QueueHistory = {
      queue,
      source,
      hours,
      stepSeconds: window.stepMs / 1000,
      from: new Date(window.from).toISOString(),
      to: new Date(window.to).toISOString(),
      points,
    };
    res.set('Cache-Control', 'no-store').json(body);
  });
  return router;
}
