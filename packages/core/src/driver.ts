import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Broker, CompleteBroker } from './broker';

/**
 * What each broker package exports per BROKER name: the schema of the environment variables
 * it reads (keys are variable names, with defaults) and a factory. The registry in
 * @polyqueue/brokers imports the package lazily, so an app only loads the client it uses.
 *
 * `B` is what the factory's broker implements: by default the complete contract (Broker,
 * BrokerEvents, BrokerAdmin), which every driver of the registry provides and the processes
 * use. A driver of the required Broker alone would be a `BrokerDriver<S, Broker>`, usable by
 * createWorker but not listed in the registry.
 */
export interface BrokerDriver<S extends z.ZodType = z.ZodType, B extends Broker = CompleteBroker> {
  envSchema: S;
  /** One line for `--help` and docs: what the broker guarantees. */
  description: string;
  createBroker(config: z.infer<S>, deps: { logger: Logger }): Promise<B>;
}

export function defineDriver<S extends z.ZodType>(driver: BrokerDriver<S>): BrokerDriver<S> {
  return driver;
}
