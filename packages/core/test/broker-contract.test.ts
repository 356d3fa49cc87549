import { describe, expect, it } from 'vitest';
import {
  assertCapabilities,
  type Broker,
  type BrokerAdmin,
  type BrokerEvents,
  type Capabilities,
  CapabilityError,
  ConfigError,
  hasAdmin,
  hasEvents,
} from '../src/index';

const CAPABILITIES: Capabilities = {
  delayedDelivery: 'native',
  priority: 'none',
  redeliveryAfterCrash: 'lease',
  ordering: 'none',
  pubsub: 'emulated',
  leaseExtension: true,
  delivery: 'at-least-once',
  ackDurable: 'on-resolve',
  crossProcess: true,
};

/** Only the required contract: what a minimal driver implements. */
function minimalBroker(capabilities: Partial<Capabilities> = {}): Broker {
  return {
    name: 'minimal',
    capabilities: { ...CAPABILITIES, ...capabilities },
    publish: async () => {},
    consume: async () => {},
    close: async () => {},
  };
}

const events: BrokerEvents = { publishEvent: async () => {}, subscribe: async () => {} };
const admin: BrokerAdmin = {
  stats: async () => ({ ready: 0, inFlight: 0, delayed: 0, dead: 0 }),
  deadLetters: () => ({ list: async () => [], redrive: async () => 0, purge: async () => 0 }),
  ping: async () => {},
};

describe('the optional parts of the broker contract', () => {
  it('hasEvents is true only for a broker that implements BrokerEvents and declares pub/sub', () => {
    expect(hasEvents(minimalBroker())).toBe(false);
    expect(hasEvents({ ...minimalBroker(), ...events })).toBe(true);
    // Methods present but pubsub 'none': the declaration wins, nobody may rely on the methods.
    expect(hasEvents({ ...minimalBroker({ pubsub: 'none' }), ...events })).toBe(false);
    // Half an interface is none of it.
    expect(hasEvents({ ...minimalBroker(), publishEvent: events.publishEvent } as Broker)).toBe(false);
  });

  it('hasAdmin is true only when stats, deadLetters and ping are all there', () => {
    expect(hasAdmin(minimalBroker())).toBe(false);
    expect(hasAdmin({ ...minimalBroker(), ...admin })).toBe(true);
    expect(hasAdmin({ ...minimalBroker(), stats: admin.stats, ping: admin.ping } as Broker)).toBe(false);
  });
});

describe('assertCapabilities', () => {
  it('passes when the broker can do everything asked', () => {
    const broker = { ...minimalBroker(), ...events };
    expect(() =>
      assertCapabilities(broker, 'email', {
        delayedDelivery: true,
        pubsub: true,
        redeliveryAfterCrash: true,
      }),
    ).not.toThrow();
  });

  it('names the queue, every missing capability with its reason, and the broker, as a ConfigError', () => {
    const broker = minimalBroker({ delayedDelivery: 'none', priority: 'none' });
    let thrown: unknown;
    try {
      assertCapabilities(
        broker,
        'email',
        { delayedDelivery: true, priority: true, pubsub: true },
        { pubsub: 'job-events topic' },
      );
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(CapabilityError);
    // runMain prints a ConfigError as one line, without a stack.
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as Error).message).toBe(
      'queue "email" needs delayed delivery, priority, pub/sub (job-events topic), which broker minimal cannot do; choose another BROKER',
    );
  });

  it('asks only for what is required: a broker without pub/sub serves a queue that needs none', () => {
    expect(() => assertCapabilities(minimalBroker({ pubsub: 'none' }), 'email', {})).not.toThrow();
  });
});
