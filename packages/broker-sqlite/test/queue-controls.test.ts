import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runQueueControlsSuite } from '@polyqueue/testkit';
import { afterAll } from 'vitest';
import { createSqliteQueueControls, createSqliteStateStore } from '../src/index';

const dir = mkdtempSync(join(tmpdir(), 'pq-controls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = join(dir, 'state.db');

// The flags share the state store's file: open the store first, as a process does.
runQueueControlsSuite('sqlite', async () => {
  const store = await createSqliteStateStore(path);
  await store.close();
  return createSqliteQueueControls(path);
});
