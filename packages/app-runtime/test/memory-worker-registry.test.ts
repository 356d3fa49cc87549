import { MemoryWorkerRegistry } from '@polyqueue/core';
import { runWorkerRegistrySuite } from '@polyqueue/testkit';

runWorkerRegistrySuite('memory', async () => new MemoryWorkerRegistry());
