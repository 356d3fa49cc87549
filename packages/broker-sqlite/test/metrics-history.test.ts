import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteMetricsHistory } from '@polyqueue/broker-sqlite';
import { runMetricsHistorySuite } from '@polyqueue/testkit';
import { afterAll } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'polyqueue-sqlite-history-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

runMetricsHistorySuite('sqlite', () => createSqliteMetricsHistory(join(dir, 'state.db')));
