/**
 * `polyqueue migrate --metrics-port N`: the migration's progress as Prometheus metrics, served
 * on /metrics (and /healthz) while it runs, so a long `--follow` is watched like any service.
 *
 *   polyqueue_migrate_rows_total{source,target,outcome}  published | already_moved | invalid
 *   polyqueue_migrate_backlog_rows{source,target}        rows after the last one read
 *   polyqueue_migrate_lag_seconds{source,target}         age of the oldest row not yet read
 *   polyqueue_migrate_pending_gaps{source,target}        skipped ids still waited for
 *   polyqueue_migrate_caught_up{source,target}           1 once the backlog is read (following)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import type { MigrateProgress } from './migrate';

export interface MigrateMetrics {
  update(progress: MigrateProgress): void;
  registry: Registry;
}

export function createMigrateMetrics(labels: { source: string; target: string }): MigrateMetrics {
  const registry = new Registry();
  const labelNames = ['source', 'target'] as const;
  const rows = new Counter({
    name: 'polyqueue_migrate_rows_total',
    help: 'Legacy rows handled by this migrate process, by outcome (published, already_moved, invalid)',
    labelNames: [...labelNames, 'outcome'],
    registers: [registry],
  });
  const gauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: [...labelNames], registers: [registry] });
  const backlog = gauge('polyqueue_migrate_backlog_rows', 'Legacy rows after the last one read');
  const lag = gauge(
    'polyqueue_migrate_lag_seconds',
    'Age of the oldest legacy row not yet read (0 when caught up)',
  );
  const gaps = gauge('polyqueue_migrate_pending_gaps', 'Skipped row ids still waited for');
  const caughtUp = gauge(
    'polyqueue_migrate_caught_up',
    '1 once the backlog is read and new rows are followed',
  );
  for (const outcome of ['published', 'already_moved', 'invalid']) rows.inc({ ...labels, outcome }, 0);
  const seen = { published: 0, already_moved: 0, invalid: 0 };
  return {
    registry,
    update(p) {
      const now = { published: p.published, already_moved: p.alreadyMoved, invalid: p.invalid };
      for (const outcome of Object.keys(now) as (keyof typeof now)[]) {
        if (now[outcome] > seen[outcome]) rows.inc({ ...labels, outcome }, now[outcome] - seen[outcome]);
        seen[outcome] = now[outcome];
      }
      backlog.set(labels, p.backlog);
      if (p.lagSeconds !== null) lag.set(labels, p.lagSeconds);
      gaps.set(labels, p.pendingGaps);
      caughtUp.set(labels, p.phase === 'following' ? 1 : 0);
    },
  };
}

/** Serves the registry on /metrics; port 0 picks a free port. */
export async function serveMetrics(
  registry: Registry,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (error: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`${error.message}\n`);
        },
      );
      return;
    }
    res.writeHead(path === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(path === '/healthz' ? 'ok\n' : 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new Error(`--metrics-port ${port}: ${error.message}`)));
    server.listen(port, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
