import { type Broker, type BrokerDriver, parseEnv, silentLogger } from '@polyqueue/core';

/**
 * Connects a driver as the registry would (its variables parsed with its own schema), without
 * the registry: a driver's tests build brokers from their own package, so the testkit depends on
 * no driver and no driver's tests on the registry.
 */
export function connectDriver<B extends Broker>(
  driver: BrokerDriver<BrokerDriver['envSchema'], B>,
  env: Record<string, string | undefined>,
): Promise<B> {
  return driver.createBroker(parseEnv(driver.envSchema, env), { logger: silentLogger() });
}
