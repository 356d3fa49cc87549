import { ackDurability } from './ack-durability';
import { batchOnce, publishConsumeAck } from './basic';
import { cancelledDelayedNeverRuns, cancelledQueuedNeverRuns, cancelledRunningAborts } from './cancellation';
import { crashRedelivery } from './crash';
import { delayedPublish, priorityOrder } from './delivery-options';
import { drainOnStop } from './drain';
import type { Scenario } from './harness';
import { extendLease, heartbeatThroughRuntime } from './leases';
import { concurrencyLimitAcrossWorkers, rateLimitAcrossWorkers } from './limits';
import { orderPerKey, orderPerKeyConcurrent } from './ordering';
import { deadLetterStore, retryAfterDelay, settleOnce } from './outcomes';
import { pauseStopsEveryConsumer } from './pause';
import { serverRestart } from './restart';
import { foreignShapeAndNonRetryable, malformedInput, maxAttemptsThroughRuntime } from './runtime';
import { competingConsumers, fanOutToGroups } from './sharing';

/** Every scenario, in the order the suite runs them. */
export const SCENARIOS: readonly Scenario[] = [
  publishConsumeAck,
  batchOnce,
  retryAfterDelay,
  deadLetterStore,
  settleOnce,
  maxAttemptsThroughRuntime,
  delayedPublish,
  priorityOrder,
  orderPerKey,
  orderPerKeyConcurrent,
  competingConsumers,
  fanOutToGroups,
  crashRedelivery,
  ackDurability,
  drainOnStop,
  malformedInput,
  foreignShapeAndNonRetryable,
  extendLease,
  heartbeatThroughRuntime,
  pauseStopsEveryConsumer,
  rateLimitAcrossWorkers,
  concurrencyLimitAcrossWorkers,
  cancelledQueuedNeverRuns,
  cancelledDelayedNeverRuns,
  cancelledRunningAborts,
  serverRestart,
];
