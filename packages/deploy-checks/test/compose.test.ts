import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brokerNames } from '@polyqueue/brokers';
import { type BrokerDriver, parseEnv } from '@polyqueue/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  appLoaders,
  appSchemas,
  appServices,
  type ComposeModel,
  type ComposeService,
  composeConfig,
  composeProfiles,
  driverVariables,
  environmentOf,
  healthcheckCommand,
  loadDrivers,
  namedVolumeMounts,
  platformVariables,
  repoRoot,
  sharedVariables,
  variableNames,
} from '../src/index';

/**
 * docker-compose.yml against the code: Compose validates the file (`config`), and the resolved
 * model is checked against the broker registry, the apps' env schemas and the Dockerfile.
 */

/** BROKER values compose cannot give a server of their own, and why. */
const withoutServer: Record<string, string> = {
  sqlite: 'embedded: the queue is a file on the shared volume (the default)',
  memory: 'in-process only: api and workers are separate containers, so they would not share it',
};

/** Started before the apps, waiting for the selected broker (docker/wait-for-broker.ts). */
const gate = 'broker-ready';

let drivers: Map<string, BrokerDriver>;
let base: ComposeModel;
let profiles: string[];
const byProfile = new Map<string, ComposeModel>();

beforeAll(async () => {
  drivers = await loadDrivers();
  base = composeConfig();
  profiles = composeProfiles();
  for (const profile of profiles)
    byProfile.set(profile, composeConfig({ profiles: [profile], env: { BROKER: profile } }));
}, 120_000);

function service(model: ComposeModel, name: string): ComposeService {
  const found = model.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
}

describe('docker-compose.yml is valid', () => {
  it('without a profile, and under every profile (docker-compose config)', () => {
    expect(Object.keys(base.services)).toEqual(
      expect.arrayContaining([...appServices, gate, 'mailpit', 'prometheus']),
    );
    expect(profiles.length).toBeGreaterThan(0);
    expect([...byProfile.keys()]).toEqual(profiles);
  });

  it('runs the default broker with no profile: every broker server sits behind a profile', () => {
    for (const name of appServices) expect(environmentOf(service(base, name)).BROKER).toBe('sqlite');
    // Compose v1 prints the services of inactive profiles too; v2 leaves them out.
    const alwaysOn = Object.entries(base.services).filter(([, s]) => !s.profiles?.length);
    expect(alwaysOn.map(([name]) => name).sort()).toEqual(
      [...appServices, gate, 'mailpit', 'prometheus'].sort(),
    );
  });
});

describe('brokers', () => {
  it('the exceptions name real brokers', () => {
    for (const name of Object.keys(withoutServer)) expect(brokerNames).toContain(name);
  });

  it('every broker the registry knows has a profile of the same name, and every profile is a broker', () => {
    const needServer = brokerNames.filter((name) => !(name in withoutServer));
    expect([...profiles].sort()).toEqual([...needServer].sort());
  });

  it("under each profile, the driver's URL variables point at a service of that profile, with a healthcheck", () => {
    for (const [profile, model] of byProfile) {
      const env = environmentOf(service(model, 'api'));
      const driver = drivers.get(profile)!;
      const hosts = variableNames(driver.envSchema)
        .filter((variable) => env[variable])
        .flatMap((variable) => hostsIn(env[variable]!).map((host) => ({ variable, host })));
      expect(hosts.length, `no URL variable of ${profile} is set`).toBeGreaterThan(0);
      for (const { variable, host } of hosts) {
        const server = model.services[host];
        expect(
          server,
          `${variable} names host "${host}", which is no service under --profile ${profile}`,
        ).toBeDefined();
        expect(server!.profiles, `service ${host} must be started only by its profiles`).toContain(profile);
        expect(healthcheckCommand(server!), `service ${host} has no healthcheck`).toBeDefined();
      }
    }
  });

  it('`BROKER=<name> docker compose --profile <name> up` gives every app that broker, with a config its driver accepts', () => {
    for (const [profile, model] of byProfile) {
      for (const name of [...appServices, gate]) {
        const env = environmentOf(service(model, name));
        expect(env.BROKER, `${name} under --profile ${profile}`).toBe(profile);
        expect(() => parseEnv(drivers.get(profile)!.envSchema, env)).not.toThrow();
      }
    }
  });

  it('the embedded default keeps its queue and state on the volume all three services share', () => {
    for (const name of [...appServices, gate]) {
      const s = service(base, name);
      const env = environmentOf(s);
      const mounts = namedVolumeMounts(s);
      for (const path of [env.SQLITE_PATH, env.STATE_URL?.replace(/^sqlite:/, '')]) {
        expect(path, `${name}: SQLITE_PATH and STATE_URL must be set`).toBeTruthy();
        expect(volumeHolding(mounts, path!), `${name}: ${path} is not on a named volume`).toBe('data');
      }
    }
  });
});

describe('app services', () => {
  it.each(appServices)('%s sets BROKER and has a healthcheck on its own HTTP port', (name) => {
    const s = service(base, name);
    expect(environmentOf(s).BROKER).toBeTruthy();
    expect(healthcheckCommand(s)).toMatch(/\/app\/docker\/healthcheck\.mjs \/readyz$/);
    const env = environmentOf(s);
    // healthcheck.mjs asks PORT on the api and METRICS_PORT on a worker.
    const port = name === 'api' ? env.PORT : env.METRICS_PORT;
    expect(Number(port), `${name} must set ${name === 'api' ? 'PORT' : 'METRICS_PORT'}`).toBeGreaterThan(0);
  });

  it.each(appServices)('%s starts after the broker gate', (name) => {
    expect(service(base, name).depends_on?.[gate]?.condition).toBe('service_completed_successfully');
  });

  it('the email worker sends through Mailpit, once Mailpit is healthy', () => {
    const s = service(base, 'email-worker');
    expect(s.depends_on?.mailpit?.condition).toBe('service_healthy');
    expect(new URL(environmentOf(s).SMTP_URL!).hostname).toBe('mailpit');
    expect(healthcheckCommand(service(base, 'mailpit'))).toBeDefined();
  });

  it('api and image worker share the storage volume (uploads in, variants out)', () => {
    const [api, worker] = [service(base, 'api'), service(base, 'image-worker')];
    const root = environmentOf(api).STORAGE_ROOT!;
    expect(environmentOf(worker).STORAGE_ROOT).toBe(root);
    expect(volumeHolding(namedVolumeMounts(api), root)).toBe('data');
    expect(volumeHolding(namedVolumeMounts(worker), root)).toBe('data');
  });

  it('the workers can be scaled (`--scale email-worker=3`): no fixed name, no host port', () => {
    for (const name of ['email-worker', 'image-worker']) {
      const s = service(base, name);
      expect(s.container_name, name).toBeUndefined();
      expect(s.ports ?? [], name).toEqual([]);
    }
  });

  it.each([...appServices, gate])(
    'every variable %s sets is one the code parses (its schema, the drivers, the runtime)',
    (name) => {
      const known = new Set([...sharedVariables(drivers), ...Object.keys(platformVariables)]);
      if (name !== gate)
        for (const v of variableNames(appSchemas[name as keyof typeof appSchemas])) known.add(v);
      const unknown = Object.keys(environmentOf(service(base, name))).filter((v) => !known.has(v));
      expect(unknown, `${name} sets variables nothing reads`).toEqual([]);
    },
  );

  it.each(appServices)('%s accepts its compose environment (the loader its main.ts calls)', (name) => {
    expect(() => appLoaders[name](environmentOf(service(base, name)))).not.toThrow();
  });

  it('no variable is read by two drivers with different meanings, except the shared prefix', () => {
    // Compose gives every app every broker's variables at once; that is only safe while each
    // name belongs to one broker family.
    const families = (brokers: string[]) =>
      new Set(brokers.map((b) => b.replace(/-(list|reliable|streams)$/, '')));
    const shared = [...driverVariables(drivers)]
      .filter(([, brokers]) => families(brokers).size > 1)
      .map(([v]) => v);
    expect(shared.filter((v) => v !== 'POLYQUEUE_PREFIX')).toEqual([]);
  });
});

describe('images', () => {
  it.each([...appServices, gate])('%s is built from docker/Dockerfile for an app that exists', (name) => {
    const build = service(base, name).build;
    expect(build, `${name} has no build`).toBeDefined();
    expect(build!.dockerfile).toBe('docker/Dockerfile');
    const app = build!.args?.APP;
    expect(app, `${name}: build arg APP`).toBe(name === gate ? 'api' : name);
    expect(existsSync(join(repoRoot, 'apps', app!, 'src', 'main.ts'))).toBe(true);
  });

  it('the files compose runs inside the image are copied by the Dockerfile', () => {
    const dockerfile = readFileSync(join(repoRoot, 'docker/Dockerfile'), 'utf8');
    const used = new Set<string>();
    for (const s of Object.values(base.services)) {
      const text = [healthcheckCommand(s) ?? '', [s.command ?? []].flat().join(' ')].join(' ');
      for (const m of text.matchAll(/\/app\/(docker\/[\w.-]+)/g)) used.add(m[1]!);
    }
    expect(used.size).toBeGreaterThan(0);
    for (const file of used) {
      expect(existsSync(join(repoRoot, file)), `${file} is missing`).toBe(true);
      expect(dockerfile, `docker/Dockerfile does not copy ${file}`).toContain(file);
    }
  });

  it('the compiled scripts compose runs are entries of the bundle the Dockerfile copies', () => {
    const dockerfile = readFileSync(join(repoRoot, 'docker/Dockerfile'), 'utf8');
    const build = readFileSync(join(repoRoot, 'scripts/build.mjs'), 'utf8');
    expect(dockerfile).toMatch(
      /^COPY --from=build \/app\/apps\/\$\{APP\}\/dist\/ \.\/apps\/\$\{APP\}\/dist\/$/m,
    );
    const command = [service(base, gate).command ?? []].flat().join(' ');
    const compiled = /\/app\/apps\/([\w-]+)\/dist\/([\w-]+)\.js/.exec(command);
    expect(compiled, `${gate} runs a compiled script`).not.toBeNull();
    const [, app, entry] = compiled!;
    expect(app).toBe(service(base, gate).build!.args!.APP);
    // scripts/build.mjs names it as `'<entry>': '<source>'` in the app's entry points.
    const source = new RegExp(`'${entry}': '([\\w./-]+\\.ts)'`).exec(build)?.[1];
    expect(source, `scripts/build.mjs has no entry ${entry}`).toBeDefined();
    expect(existsSync(join(repoRoot, source!))).toBe(true);
    expect(dockerfile, `the build stage must copy ${source}`).toContain(source!);
  });

  it('the Dockerfile runs on a supported Node LTS, as a non-root user, with a healthcheck', () => {
    const dockerfile = readFileSync(join(repoRoot, 'docker/Dockerfile'), 'utf8');
    const node = /^ARG NODE_VERSION=(\d+)/m.exec(dockerfile)?.[1];
    expect(['22', '24']).toContain(node);
    expect(dockerfile).toMatch(/^FROM node:\$\{NODE_VERSION\}-\w+-slim AS base$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toMatch(/turbo@\$\{turbo_version\}" prune/);
  });
});

/** Hostnames in a URL or a comma-separated host:port list. */
function hostsIn(value: string): string[] {
  try {
    const url = new URL(value);
    if (url.hostname) return [url.hostname];
  } catch {
    // not a URL: maybe host:port,host:port (KAFKA_BROKERS)
  }
  return value
    .split(',')
    .map((part) => /^([A-Za-z0-9._-]+):\d+$/.exec(part.trim())?.[1])
    .filter((host): host is string => host !== undefined);
}

/** The named volume mounted at the deepest target that contains `path`. */
function volumeHolding(mounts: Map<string, string>, path: string): string | undefined {
  let best: { target: string; volume: string } | undefined;
  for (const [target, volume] of mounts) {
    if ((path === target || path.startsWith(`${target}/`)) && (!best || target.length > best.target.length))
      best = { target, volume };
  }
  return best?.volume;
}
