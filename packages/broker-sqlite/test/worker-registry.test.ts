import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteWorkerRegistry } from '@polyqueue/broker-sqlite';
import { runWorkerRegistrySuite } from '@polyqueue/testkit';
import { afterAll } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sqlite-workers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

runWorkerRegistrySuite('sqlite', () => createSqliteWorkerRegistry(join(dir, 'state.db')));
