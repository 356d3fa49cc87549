import {
  type Broker,
  type BrokerDriver,
  CapabilityError,
  type CompleteBroker,
  ConfigError,
  hasAdmin,
  hasEvents,
  type Logger,
  parseEnv,
  silentLogger,
} from '@polyqueue/core';

type Env = Record<string, string | undefined>;

/**
 * BROKER name -> its driver, imported only when chosen, so an app loads one client library.
 * Each package exports `drivers` keyed by the names below.
 */
const loaders: Record<string, () => Promise<BrokerDriver>> = {
  sqlite: async () => (await import('@polyqueue/broker-sqlite')).drivers.sqlite!,
  memory: async () => (await import('@polyqueue/broker-memory')).drivers.memory!,
  'redis-list': async () => (await import('@polyqueue/broker-redis')).drivers['redis-list']!,
  'redis-reliable': async () => (await import('@polyqueue/broker-redis')).drivers['redis-reliable']!,
  'redis-streams': async () => (await import('@polyqueue/broker-redis')).drivers['redis-streams']!,
  rabbitmq: async () => (await import('@polyqueue/broker-rabbitmq')).drivers.rabbitmq!,
  kafka: async () => (await import('@polyqueue/broker-kafka')).drivers.kafka!,
  sqs: async () => (await import('@polyqueue/broker-sqs')).drivers.sqs!,
  mysql: async () => (await import('@polyqueue/broker-mysql')).drivers.mysql!,
};

export const brokerNames: readonly string[] = Object.keys(loaders);
export const DEFAULT_BROKER = 'sqlite';

/** The driver for a BROKER name; an unknown name fails and lists the valid ones. */
export async function loadDriver(name: string): Promise<BrokerDriver> {
  const load = loaders[name];
  if (!load) {
    const hint = closest(name, brokerNames);
    throw new ConfigError(
      `BROKER: unknown broker "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; valid: ${brokerNames.join(', ')}`,
    );
  }
  return load();
}

/**
 * Reads BROKER (default sqlite) and the chosen driver's variables from env, and connects.
 *
 * The broker comes typed as the complete contract (events and admin beside the required
 * Broker): the processes need both (a worker publishes job events and serves /readyz, the API
 * reads queue depth, the CLI lists dead letters) and every driver above implements both. The
 * promise is checked here, at start-up, so a driver that lacks one is refused with a message
 * naming it rather than failing on the first call that needs it.
 */
export async function createBrokerFromEnv(
  env: Env,
  logger: Logger = silentLogger(),
): Promise<CompleteBroker> {
  const name = env.BROKER?.trim() || DEFAULT_BROKER;
  const driver = await loadDriver(name);
  const config = parseEnv(driver.envSchema, env);
  return registered(await driver.createBroker(config, { logger }));
}

/** The broker, typed as what the registry promises, or closed and refused. */
export async function registered(broker: Broker): Promise<CompleteBroker> {
  if (hasEvents(broker) && hasAdmin(broker)) return broker;
  const missing = [
    ...(hasEvents(broker) ? [] : ['BrokerEvents (publishEvent, subscribe)']),
    ...(hasAdmin(broker) ? [] : ['BrokerAdmin (stats, deadLetters, ping)']),
  ];
  await broker.close().catch(() => {});
  throw new CapabilityError(
    `BROKER: broker ${broker.name} does not implement ${missing.join(' or ')}, which the polyqueue processes need`,
  );
}

/** The nearest name by edit distance, for a "did you mean" on typos. */
function closest(input: string, names: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(input.toLowerCase(), name);
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best && best.distance <= 3 ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}
