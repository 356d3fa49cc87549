import { join } from 'node:path';
import { type BrokerDriver, parseEnv } from '@polyqueue/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AppService,
  appLoaders,
  appSchemas,
  containerEnvironment,
  driverVariables,
  type K8sObject,
  k8sDir,
  loadDrivers,
  overlayNames,
  overlaysDir,
  platformVariables,
  render,
  runtimeVariables,
  triggerProblems,
  validateObject,
  variableNames,
} from '../src/index';

/**
 * deploy/k8s against the code: every overlay renders with kustomize, every object matches its
 * kind's schema, each process's environment parses with the schema the process itself uses, and
 * each worker scales (KEDA) on its own queue, by the broker's native measure and by
 * polyqueue's own metric.
 */

/** The overlays there must be: the brokers KEDA can measure natively, as the issue lists them. */
const EXPECTED_OVERLAYS = ['kafka', 'mysql', 'rabbitmq', 'redis-streams', 'sqs'];

/** Variables in the manifests read by KEDA's scalers (from the target's env), not by polyqueue. */
const KEDA_ONLY: Record<string, string> = {
  REDIS_PASSWORD: 'redis-streams scaler: passwordFromEnv',
  MYSQL_DSN: 'mysql scaler: connectionStringFromEnv (a Go DSN)',
};

/** Where queue Q lives per broker (DESIGN.md's naming table), as each native trigger must name it. */
const QUEUE_FIELDS: Record<string, { type: string; field: string; name: (q: string) => string }> = {
  'redis-streams': { type: 'redis-streams', field: 'stream', name: (q) => `polyqueue:${q}` },
  rabbitmq: { type: 'rabbitmq', field: 'queueName', name: (q) => `polyqueue.${q}` },
  kafka: { type: 'kafka', field: 'topic', name: (q) => `polyqueue.${q}` },
  sqs: { type: 'aws-sqs-queue', field: 'queueURL', name: (q) => `polyqueue-${q}` },
  mysql: { type: 'mysql', field: 'query', name: (q) => `FROM polyqueue_${q} ` },
};

const WORKERS: Record<string, { app: AppService; queue: string }> = {
  'email-worker': { app: 'email-worker', queue: 'email' },
  'image-worker': { app: 'image-worker', queue: 'image' },
};

let drivers: Map<string, BrokerDriver>;
const rendered = new Map<string, K8sObject[]>();

beforeAll(async () => {
  drivers = await loadDrivers();
  for (const overlay of overlayNames()) rendered.set(overlay, render(join(overlaysDir, overlay)));
}, 120_000);

const of = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const named = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};
const selects = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);

describe('deploy/k8s', () => {
  it('has an overlay per broker KEDA can measure, and the base renders alone', () => {
    expect(overlayNames()).toEqual(EXPECTED_OVERLAYS);
    const base = render(join(k8sDir, 'base'));
    expect(
      of(base, 'Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['api', 'email-worker', 'image-worker']);
  });

  it('refuses a malformed object and a malformed trigger (the checks below can fail)', () => {
    expect(() =>
      validateObject({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'x' },
        spec: { replicas: 'two' },
      }),
    ).toThrow(/Deployment x does not match its schema/);
    expect(() => validateObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } })).toThrow(
      /no schema/,
    );
    expect(
      triggerProblems({ type: 'rabbitmq', metadata: { queueName: 'q', mode: 'QueueLength', value: 5 } }),
    ).toEqual([
      'rabbitmq.value must be a string (quote it)',
      'rabbitmq: one of host, hostFromEnv is required',
    ]);
  });

  describe.each(EXPECTED_OVERLAYS)('overlay %s', (overlay) => {
    const objects = () => rendered.get(overlay)!;

    it('renders objects that each match their kind’s schema', () => {
      expect(objects().length).toBeGreaterThan(0);
      for (const object of objects()) validateObject(object);
    });

    it('gives every process a shared state store and an environment its own schema accepts', () => {
      const known = new Set([
        ...runtimeVariables(),
        ...Object.values(appSchemas).flatMap((schema) => variableNames(schema)),
        ...driverVariables(drivers).keys(),
        ...Object.keys(platformVariables),
        ...Object.keys(KEDA_ONLY),
      ]);
      for (const deployment of of(objects(), 'Deployment')) {
        const app = deployment.metadata.name as AppService;
        const [container] = deployment.spec.template.spec.containers;
        const env = containerEnvironment(container, objects());
        const unknown = Object.keys(env).filter((name) => !known.has(name));
        expect(unknown, `${app}: variables no code reads`).toEqual([]);
        expect(env.BROKER, `${app}: BROKER`).toBe(overlay);
        expect(env.STATE_URL, `${app}: STATE_URL (pods share no file)`).toMatch(/^(redis|rediss|mysql):\/\//);
        appLoaders[app](env);
        parseEnv(drivers.get(overlay)!.envSchema, env);
      }
    });

    it('probes /healthz and /readyz where each process serves them, and outlasts the drain', () => {
      for (const deployment of of(objects(), 'Deployment')) {
        const name = deployment.metadata.name;
        const pod = deployment.spec.template.spec;
        const [container] = pod.containers;
        const env = containerEnvironment(container, objects());
        const port = Number(name === 'api' ? env.PORT : env.METRICS_PORT);
        expect(port, `${name}: the port it serves probes on`).toBeGreaterThan(0);
        const portOf = (probe: { httpGet: { port: string | number } }) => {
          const p = probe.httpGet.port;
          return typeof p === 'number'
            ? p
            : container.ports.find((x: { name: string }) => x.name === p)?.containerPort;
        };
        expect(container.livenessProbe.httpGet.path, `${name} liveness`).toBe('/healthz');
        expect(container.readinessProbe.httpGet.path, `${name} readiness`).toBe('/readyz');
        expect(portOf(container.livenessProbe), `${name} liveness port`).toBe(port);
        expect(portOf(container.readinessProbe), `${name} readiness port`).toBe(port);
        const drainMs = Number(env.DRAIN_TIMEOUT_MS ?? 30_000);
        expect(
          pod.terminationGracePeriodSeconds * 1000,
          `${name}: grace period vs DRAIN_TIMEOUT_MS`,
        ).toBeGreaterThan(drainMs);
      }
    });

    it('covers every Deployment with a PodDisruptionBudget and the API with a Service', () => {
      const deployments = of(objects(), 'Deployment');
      for (const deployment of deployments) {
        const labels = deployment.spec.template.metadata.labels;
        expect(
          selects(deployment.spec.selector.matchLabels, labels),
          `${deployment.metadata.name} selector`,
        ).toBe(true);
        const budgets = of(objects(), 'PodDisruptionBudget').filter((p) =>
          selects(p.spec.selector.matchLabels, labels),
        );
        expect(
          budgets.map((b) => b.metadata.name),
          `PDBs of ${deployment.metadata.name}`,
        ).toHaveLength(1);
      }
      const service = named(objects(), 'Service', 'api');
      expect(
        selects(service.spec.selector, named(objects(), 'Deployment', 'api').spec.template.metadata.labels),
      ).toBe(true);
    });

    it('scales each worker on its own queue: the native trigger plus the Prometheus fallback', () => {
      const scaled = of(objects(), 'ScaledObject');
      expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual(Object.keys(WORKERS).sort());
      for (const object of scaled) {
        const worker = object.spec.scaleTargetRef.name as string;
        const { queue } = WORKERS[worker]!;
        const spec = object.spec;
        const deployment = named(objects(), 'Deployment', worker);
        const env = containerEnvironment(deployment.spec.template.spec.containers[0], objects());
        expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
        expect(spec.maxReplicaCount).toBeGreaterThan(spec.minReplicaCount);
        expect(spec.fallback?.replicas, `${worker}: fallback replicas`).toBeGreaterThanOrEqual(1);
        for (const trigger of spec.triggers)
          expect(triggerProblems(trigger), `${worker} ${trigger.type}`).toEqual([]);
        // *FromEnv fields name variables of the target container (KEDA resolves them there).
        for (const trigger of spec.triggers)
          for (const [field, value] of Object.entries(trigger.metadata as Record<string, string>))
            if (field.endsWith('FromEnv'))
              expect(env, `${worker} ${trigger.type}.${field}`).toHaveProperty(value);
        const expected = QUEUE_FIELDS[overlay]!;
        const native = spec.triggers.filter((t: { type: string }) => t.type === expected.type);
        expect(native, `${worker}: one ${expected.type} trigger`).toHaveLength(1);
        expect(native[0].metadata[expected.field]).toContain(expected.name(queue));
        const prometheus = spec.triggers.filter((t: { type: string }) => t.type === 'prometheus');
        expect(prometheus, `${worker}: one prometheus trigger`).toHaveLength(1);
        // Every pod (API and workers) exports the same depth: max, never sum.
        expect(prometheus[0].metadata.query).toBe(
          `max(polyqueue_queue_depth{queue="${queue}",state="ready"})`,
        );
        if (overlay === 'kafka')
          expect(spec.maxReplicaCount, 'replicas beyond the partitions idle').toBeLessThanOrEqual(
            Number(env.KAFKA_PARTITIONS),
          );
        if (overlay === 'redis-streams') {
          const url = new URL(env.REDIS_URL!);
          expect(native[0].metadata.address).toBe(`${url.hostname}:${url.port || 6379}`);
          expect(env.REDIS_PASSWORD).toBe(decodeURIComponent(url.password));
        }
        if (overlay === 'mysql') {
          const url = new URL(env.MYSQL_URL!);
          expect(env.MYSQL_DSN).toBe(
            `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}@tcp(${url.hostname}:${url.port || 3306})${url.pathname}`,
          );
        }
      }
      for (const auth of of(objects(), 'ScaledObject')
        .flatMap((s) => s.spec.triggers)
        .filter((t) => t.authenticationRef))
        named(objects(), 'TriggerAuthentication', auth.authenticationRef.name);
    });
  });
});
