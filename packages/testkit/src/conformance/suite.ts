import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { Harness, type Scenario } from './harness';
import type { ConformanceOptions } from './options';
import { SCENARIOS } from './scenarios';

/**
 * The broker conformance suite. A driver's test calls it once with how to reach its server;
 * each scenario runs as one test, skipped where its `applies` predicate says the broker's
 * capabilities (or what the driver's test declares) leave it nothing to check. Never by
 * broker name.
 */
export function runConformanceSuite(
  options: ConformanceOptions,
  scenarios: readonly Scenario[] = SCENARIOS,
): void {
  describe(`broker conformance: ${options.broker}`, () => {
    const h = new Harness(options);

    beforeAll(async () => {
      h.broker = await h.connect();
    }, 30_000);

    afterEach(() => h.stopConsumers(), 60_000);

    afterAll(() => h.close(), 30_000);

    for (const scenario of scenarios) {
      it(
        scenario.name,
        async (ctx) => {
          if (scenario.applies && !scenario.applies(h.broker.capabilities, options)) return ctx.skip();
          await scenario.run(h, ctx);
        },
        scenario.timeoutMs,
      );
    }
  });
}
