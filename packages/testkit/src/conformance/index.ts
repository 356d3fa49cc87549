/**
 * The broker conformance suite: runConformanceSuite (suite.ts) runs every scenario of
 * scenarios.ts against one driver, through the Harness (harness.ts). One file per concern,
 * each scenario with its own capability predicate.
 */
export type { Scenario } from './harness';
export { Harness } from './harness';
export { type ConformanceOptions, uniqueQueueName } from './options';
export { SCENARIOS } from './scenarios';
export { runConformanceSuite } from './suite';
