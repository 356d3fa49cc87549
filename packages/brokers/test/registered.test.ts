import type { Broker, Capabilities } from '@polyqueue/core';
import { describe, expect, it } from 'vitest';
import { brokerNames, createBrokerFromEnv, registered } from '../src';

const CAPABILITIES: Capabilities = {
  delayedDelivery: 'native',
  priority: 'none',
  redeliveryAfterCrash: 'lease',
  ordering: 'none',
  pubsub: 'none',
  leaseExtension: false,
  delivery: 'at-least-once',
  ackDurable: 'on-resolve',
  crossProcess: true,
};

describe('what the registry promises of a broker', () => {
  it('refuses, at connect, a broker with only the required contract, naming what is missing, and closes it', async () => {
    let closed = 0;
    const minimal: Broker = {
      name: 'minimal',
      capabilities: CAPABILITIES,
      publish: async () => {},
      consume: async () => {},
      close: async () => {
        closed += 1;
      },
    };
    await expect(registered(minimal)).rejects.toThrow(
      'BROKER: broker minimal does not implement BrokerEvents (publishEvent, subscribe) or BrokerAdmin (stats, deadLetters, ping), which the polyqueue processes need',
    );
    expect(closed).toBe(1);
  });

  it('hands out the embedded brokers with events and admin (the other drivers: their conformance tests connect through it)', async () => {
    expect(brokerNames).toContain('memory');
    const broker = await createBrokerFromEnv({ BROKER: 'memory' });
    try {
      await broker.ping();
      expect(await broker.stats('q')).toEqual({ ready: 0, inFlight: 0, delayed: 0, dead: 0 });
      expect(typeof broker.subscribe).toBe('function');
    } finally {
      await broker.close();
    }
  });
});
