import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRuntimeMetrics, registerQueueDepthGauge } from '@polyqueue/core';
import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { appServices, type ComposeModel, composeConfig, environmentOf, repoRoot } from '../src/index';

/**
 * ops/prometheus against the code and the compose file: what Prometheus scrapes is what compose
 * runs, and the alert rules use the metric names, labels and label values the code exports.
 * (promtool checks the syntax and runs the rules' unit tests: scripts/ci/check-deploy.sh.)
 */

interface ScrapeConfig {
  job_name: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: { names: string[]; type?: string; port: number }[];
}
interface PrometheusConfig {
  rule_files: string[];
  scrape_configs: ScrapeConfig[];
}
interface RuleFile {
  groups: { name: string; rules: { alert?: string; expr: string; for?: string }[] }[];
}

const dir = join(repoRoot, 'ops/prometheus');
const config = parse(readFileSync(join(dir, 'prometheus.yml'), 'utf8')) as PrometheusConfig;
const rules = parse(readFileSync(join(dir, 'alerts.yml'), 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);

/** Labels Prometheus or the runtime's registry add to every series. */
const targetLabels = new Set(['job', 'instance', 'service']);

let compose: ComposeModel;
/** Metric name (histograms with their _bucket/_sum/_count series) -> its label names. */
const metrics = new Map<string, Set<string>>();
/** The values the queue-depth gauge gives its `state` label. */
let depthStates: Set<string>;

beforeAll(async () => {
  compose = composeConfig();
  const registry = new Registry();
  createRuntimeMetrics(registry);
  const stats = { ready: 1, inFlight: 2, delayed: 3, dead: 4 };
  registerQueueDepthGauge(registry, { stats: async () => stats }, ['q']);
  for (const metric of registry.getMetricsAsArray()) {
    const { name, type } = metric;
    // Declared label names: a labelled counter has no series (and so no labels) until first used.
    const labels = new Set((metric as unknown as { labelNames?: string[] }).labelNames ?? []);
    const names = String(type) === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
    for (const series of names) metrics.set(series, labels);
  }
  const depth = (await registry.getMetricsAsJSON()).find((m) => m.name === 'polyqueue_queue_depth')!;
  depthStates = new Set(depth.values.map((v) => String(v.labels.state)));
}, 60_000);

describe('prometheus.yml scrapes what compose runs', () => {
  it('the api at its PORT', () => {
    const job = config.scrape_configs.find((j) => j.job_name === 'api');
    const port = environmentOf(compose.services.api!).PORT;
    expect(job?.static_configs?.[0]?.targets).toEqual([`api:${port}`]);
  });

  it.each(['email-worker', 'image-worker'])(
    'every replica of %s at its METRICS_PORT (DNS discovery)',
    (name) => {
      const job = config.scrape_configs.find((j) => j.job_name === name);
      const sd = job?.dns_sd_configs?.[0];
      expect(sd, `job ${name} must use dns_sd_configs, so scaled replicas are all scraped`).toBeDefined();
      expect(sd!.names).toEqual([name]);
      expect(String(sd!.port)).toBe(environmentOf(compose.services[name]!).METRICS_PORT);
    },
  );

  it('compose mounts this folder where the prometheus command reads its config', () => {
    const prometheus = compose.services.prometheus!;
    const mounts = (prometheus.volumes ?? []).map((v) =>
      typeof v === 'string' ? v : `${v.source}:${v.target}`,
    );
    expect(mounts.some((m) => /ops\/prometheus:\/etc\/prometheus(:ro)?$/.test(m))).toBe(true);
    expect([prometheus.command ?? []].flat()).toContain('--config.file=/etc/prometheus/prometheus.yml');
    expect(config.rule_files).toEqual(['alerts.yml']);
  });
});

describe('alerts.yml is written against the metrics the code exports', () => {
  it('names the four failures of the runbook, and a service-down alert', () => {
    expect(alerts.map((a) => a.alert)).toEqual([
      'QueueBacklogHigh',
      'NoActiveConsumers',
      'ProcessingRateLow',
      'DeadLettersGrowing',
      'PolyqueueServiceDown',
    ]);
  });

  it.each(alerts.map((a) => [a.alert!, a.expr] as const))(
    '%s uses existing metrics and labels',
    (_alert, expr) => {
      const used = [...expr.matchAll(/\b(polyqueue_[a-z_]+)\s*(\{[^}]*\})?/g)];
      for (const [, name, matchers] of used) {
        const labels = metrics.get(name!);
        expect(labels, `${name} is not a metric of packages/core/src/metrics.ts`).toBeDefined();
        for (const [, label] of (matchers ?? '').matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)) {
          expect(labels!.has(label!) || targetLabels.has(label!), `${name} has no label ${label}`).toBe(true);
        }
      }
      for (const [, labels] of expr.matchAll(/\b(?:by|on)\s*\(([^)]*)\)/g)) {
        for (const label of labels!.split(',').map((l) => l.trim())) {
          expect([...metrics.values()].some((set) => set.has(label)) || targetLabels.has(label), label).toBe(
            true,
          );
        }
      }
    },
  );

  it('state and outcome values are ones the code sets', () => {
    const outcomes = outcomeValues();
    for (const { expr } of alerts) {
      for (const [, value] of expr.matchAll(/state\s*=\s*"([^"]+)"/g)) expect(depthStates).toContain(value);
      for (const [, values] of expr.matchAll(/outcome\s*=~?\s*"([^"]+)"/g)) {
        for (const value of values!.split('|')) expect(outcomes).toContain(value);
      }
    }
  });

  it('the service-down alert watches exactly the scrape jobs of the three services', () => {
    const expr = alerts.find((a) => a.alert === 'PolyqueueServiceDown')!.expr;
    const jobs = /job=~"([^"]+)"/.exec(expr)?.[1]?.split('|') ?? [];
    expect(jobs.sort()).toEqual([...appServices].sort());
    for (const job of jobs) expect(config.scrape_configs.map((j) => j.job_name)).toContain(job);
  });
});

/** The worker runtime's outcome label values: `export type Outcome = 'a' | 'b' ...` in core. */
function outcomeValues(): string[] {
  const source = readFileSync(join(repoRoot, 'packages/core/src/outcome.ts'), 'utf8');
  const union = /export type Outcome\s*=\s*([^;]+);/.exec(source)?.[1];
  if (!union) throw new Error('packages/core/src/outcome.ts no longer declares `export type Outcome`');
  return [...union.matchAll(/'([^']+)'/g)].map((m) => m[1]!);
}
