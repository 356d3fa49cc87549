import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Broker } from './broker';

/**
 * What each broker package exports per BROKER name: the schema of the environment variables
 * it reads (keys are variable names, with defaults) and a factory. The registry in
 * @polyqueue/brokers imports the package lazily, so an app only loads the client it uses.
 */
export interface BrokerDriver<S extends z.ZodType = z.ZodType> {
  envSchema: S;
  /** One line for `--help` and docs: what the broker guarantees. */
  description: string;
  createBroker(config: z.infer<S>, deps: { logger: Logger }): Promise<Broker>;
}

export function defineDriver<S extends z.ZodType>(driver: BrokerDriver<S>): BrokerDriver<S> {
  return driver;
}
