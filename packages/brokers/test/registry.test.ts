import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { brokerNames, createBrokerFromEnv, createStateStore, loadDriver } from '../src';

describe('broker registry', () => {
  it('knows every BROKER name of DESIGN.md', () => {
    expect([...brokerNames].sort()).toEqual(
      [
        'kafka',
        'memory',
        'mysql',
        'rabbitmq',
        'redis-list',
        'redis-reliable',
        'redis-streams',
        'sqlite',
        'sqs',
      ].sort(),
    );
  });

  it('rejects an unknown BROKER, listing the valid ones and the nearest', async () => {
    await expect(loadDriver('rabbit')).rejects.toThrow(
      /^BROKER: unknown broker "rabbit" \(did you mean "rabbitmq"\?\); valid: sqlite, memory, redis-list, /,
    );
    await expect(createBrokerFromEnv({ BROKER: 'zeromq' })).rejects.toThrow(
      /BROKER: unknown broker "zeromq"; valid: /,
    );
  });

  it('names a malformed driver variable with what was expected', async () => {
    await expect(createBrokerFromEnv({ BROKER: 'sqlite', SQLITE_LEASE_MS: 'soon' })).rejects.toThrow(
      /^invalid configuration: SQLITE_LEASE_MS: .* \(got "soon"\)$/,
    );
  });

  it('names a malformed STATE_URL', async () => {
    await expect(createStateStore('not a url')).rejects.toThrow(/^STATE_URL: not a URL/);
    await expect(createStateStore('postgres://x/y')).rejects.toThrow(
      /^STATE_URL: unknown scheme "postgres:"; valid: /,
    );
  });

  it('defaults to the embedded sqlite broker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pq-registry-'));
    const broker = await createBrokerFromEnv({ SQLITE_PATH: `${dir}/q.db` });
    expect(broker.name).toBe('sqlite');
    await broker.close();
  });
});
