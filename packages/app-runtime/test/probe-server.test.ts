import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startProbeServer } from '../src/probe-server';

let close: (() => Promise<void>) | undefined;
afterEach(async () => close?.());

describe('startProbeServer', () => {
  it('serves /healthz, /readyz (503 with the reason when a dependency is down) and /metrics', async () => {
    const registry = new Registry();
    new Counter({ name: 'probe_test_total', help: 'test', registers: [registry] }).inc();
    let down: Error | undefined;
    const { server, port } = await startProbeServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      ready: async () => {
        if (down) throw down;
      },
    });
    close = () => new Promise((resolve) => server.close(() => resolve()));
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    down = new Error('broker unreachable');
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: 'unavailable', reason: 'broker unreachable' });
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/probe_test_total 1/);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
