import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/**
 * `docker-compose config` as data. There is no Docker engine where these checks run, so the
 * compose file is checked by Compose itself (`config` validates the file against its schema and
 * resolves anchors, `${VAR:-default}` interpolation and profiles) and the result is read here.
 *
 * Either Compose works: Debian's `docker-compose` (v1.29, Python; what CI installs, see
 * scripts/ci/check-deploy.sh) or the Docker CLI plugin (`docker compose`, v2). Both print the
 * resolved model as YAML.
 */

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const composeFile = join(repoRoot, 'docker-compose.yml');

export interface ComposeHealthcheck {
  test?: string[] | string;
  disable?: boolean;
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}

export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string; args?: Record<string, string> };
  command?: string[] | string;
  environment?: Record<string, string | number | null>;
  profiles?: string[];
  healthcheck?: ComposeHealthcheck;
  depends_on?: Record<string, { condition?: string }>;
  ports?: unknown[];
  volumes?: (string | { type?: string; source?: string; target: string })[];
  container_name?: string;
  restart?: string;
  init?: boolean;
}

export interface ComposeModel {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** How to run Compose here, or an error saying how to install it. */
export function findCompose(): string[] {
  const works = (cmd: string, args: string[]) =>
    spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000 }).status === 0;
  if (works('docker-compose', ['version'])) return ['docker-compose'];
  if (works('docker', ['compose', 'version'])) return ['docker', 'compose'];
  throw new Error(
    'Docker Compose is not installed: the compose checks need `docker-compose` (Debian: ' +
      '`apt-get install --no-install-recommends docker-compose`, which `bash scripts/ci/check-deploy.sh` ' +
      'does) or the `docker compose` plugin. No Docker engine is needed.',
  );
}

export interface ConfigOptions {
  profiles?: string[];
  /** Interpolation variables, as a user would set them in the shell (BROKER=kafka ...). */
  env?: Record<string, string>;
}

let compose: string[] | undefined;

/** Runs `config` (which fails on an invalid file) and returns the resolved model. */
export function composeConfig(options: ConfigOptions = {}): ComposeModel {
  const text = runCompose(
    [...(options.profiles ?? []).flatMap((p) => ['--profile', p]), 'config'],
    options.env,
  );
  const model = parse(text) as ComposeModel;
  if (!model?.services) throw new Error(`compose config printed no services:\n${text}`);
  return model;
}

/** The profiles the file defines (`config --profiles`). */
export function composeProfiles(): string[] {
  return runCompose(['config', '--profiles'])
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

function runCompose(args: string[], env: Record<string, string> = {}): string {
  compose ??= findCompose();
  const [cmd, ...pre] = compose as [string, ...string[]];
  // The file as a fresh clone sees it: this shell's BROKER or COMPOSE_PROFILES must not leak in.
  const interpolated = interpolatedVariables();
  const clean: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('COMPOSE_') && !interpolated.has(key)) clean[key] = value;
  }
  try {
    return execFileSync(cmd, [...pre, '-f', composeFile, ...args], {
      cwd: repoRoot,
      env: { ...clean, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${[cmd, ...pre, ...args].join(' ')} failed:\n${stderr || String(error)}`);
  }
}

/** The `${VAR}` names docker-compose.yml takes from the user's shell. */
export function interpolatedVariables(): Set<string> {
  const text = readFileSync(composeFile, 'utf8');
  return new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!));
}

/** A service's environment as strings, the way the process will see it. */
export function environmentOf(service: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(service.environment ?? {}))
    env[key] = value == null ? '' : String(value);
  return env;
}

/** Named-volume mounts of a service: target path -> volume name. */
export function namedVolumeMounts(service: ComposeService): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const volume of service.volumes ?? []) {
    if (typeof volume === 'string') {
      const [source, target] = volume.split(':');
      if (source && target && !source.startsWith('.') && !source.startsWith('/')) mounts.set(target, source);
    } else if (volume.type === 'volume' && volume.source) {
      mounts.set(volume.target, volume.source);
    }
  }
  return mounts;
}

/** The healthcheck command as one string, or undefined when there is none or it is disabled. */
export function healthcheckCommand(service: ComposeService): string | undefined {
  const check = service.healthcheck;
  if (!check || check.disable) return undefined;
  const test = Array.isArray(check.test) ? check.test : check.test ? [check.test] : [];
  if (test[0] === 'NONE' || test.length === 0) return undefined;
  return test.slice(test[0] === 'CMD' || test[0] === 'CMD-SHELL' ? 1 : 0).join(' ');
}
