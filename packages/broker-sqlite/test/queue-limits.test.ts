import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runQueueLimitsSuite } from '@polyqueue/testkit';
import { afterAll } from 'vitest';
import { createSqliteQueueLimits, createSqliteStateStore } from '../src/index';

const dir = mkdtempSync(join(tmpdir(), 'pq-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = join(dir, 'state.db');

// The limits share the state store's file: open the store first, as a process does.
runQueueLimitsSuite('sqlite', async () => {
  const store = await createSqliteStateStore(path);
  await store.close();
  return createSqliteQueueLimits(path);
});
