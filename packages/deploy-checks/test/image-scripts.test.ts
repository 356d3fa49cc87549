import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../src/index';

/**
 * The two scripts the images run besides the services: docker/healthcheck.mjs (every app
 * container's healthcheck) and docker/wait-for-broker.ts (the broker-ready gate), run here as
 * the containers run them: the gate compiled, apps/api/dist/wait-for-broker.js.
 */

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string>): Promise<Run> {
  // Only PATH and HOME from this shell: BROKER, PORT or METRICS_PORT here must not leak in.
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: repoRoot, env: { ...base, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('docker/healthcheck.mjs', () => {
  let server: Server;
  let port: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/healthz') return res.writeHead(200).end('{"status":"ok"}');
      res.writeHead(503).end('{"status":"unavailable","reason":"broker down"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = String((server.address() as AddressInfo).port);
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const check = (path: string, env: Record<string, string>) => run(['docker/healthcheck.mjs', path], env);

  it('asks the api on PORT and exits 0 on 200', async () => {
    expect((await check('/healthz', { APP: 'api', PORT: port, METRICS_PORT: '1' })).code).toBe(0);
  });

  it('asks a worker on METRICS_PORT', async () => {
    expect((await check('/healthz', { APP: 'email-worker', METRICS_PORT: port, PORT: '1' })).code).toBe(0);
  });

  it('exits 1 and says why on a non-2xx answer', async () => {
    const result = await check('/readyz', { APP: 'api', PORT: port });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('503');
    expect(result.stderr).toContain('broker down');
  });

  it('exits 1 when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const unused = String((closed.address() as AddressInfo).port);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect((await check('/healthz', { APP: 'image-worker', METRICS_PORT: unused })).code).toBe(1);
  });

  it('exits 1 for a worker without a probe port (METRICS_PORT=0)', async () => {
    const result = await check('/healthz', { APP: 'image-worker', METRICS_PORT: '0' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('METRICS_PORT');
  });
});

describe('docker/wait-for-broker.ts', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'polyqueue-wait-'));
    // The image runs the bundle scripts/build.mjs makes (a no-op when it is up to date).
    execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale', 'api'], { cwd: repoRoot });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const wait = (seconds: string, env: Record<string, string>) =>
    run(['apps/api/dist/wait-for-broker.js', seconds], env);

  it('exits 0 once the selected broker answers (the embedded sqlite)', async () => {
    const result = await wait('30', { BROKER: 'sqlite', SQLITE_PATH: join(dir, 'queue.db') });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('broker sqlite is ready');
  }, 60_000);

  it('exits 2 at once on a configuration that waiting cannot fix', async () => {
    const unknown = await wait('30', { BROKER: 'rabitmq' });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('did you mean "rabbitmq"');
    const malformed = await wait('30', { BROKER: 'redis-streams', REDIS_URL: 'localhost:6379' });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('REDIS_URL');
  }, 60_000);

  it('exits 1 naming the broker when it is not ready in time', async () => {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const result = await wait('1', { BROKER: 'redis-reliable', REDIS_URL: 'redis://127.0.0.1:1' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/broker redis-reliable was not ready within 1 s/);
  }, 60_000);
});
