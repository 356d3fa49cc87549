import { MemoryMetricsHistory } from '@polyqueue/core';
import { runMetricsHistorySuite } from '@polyqueue/testkit';

runMetricsHistorySuite('memory', async () => new MemoryMetricsHistory());
