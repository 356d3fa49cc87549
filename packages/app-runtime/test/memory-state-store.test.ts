import { runStateStoreSuite } from '@polyqueue/testkit';
import { MemoryStateStore } from '../src/memory-state-store';

// The in-process store keeps the same contract as sqlite, redis and mysql: unit tests and the
// bench rely on it behaving like them.
runStateStoreSuite('memory', async () => new MemoryStateStore());
