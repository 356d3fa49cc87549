import type {
  Broker,
  BrokerAdmin,
  Capabilities,
  Envelope,
  OutgoingMessage,
  Priority,
  QueueStats,
} from '@polyqueue/core';

/**
 * The part of a broker the API uses, recording what it publishes; set failWith to simulate an
 * outage, and capabilities to play a broker that lacks delayed delivery or priority.
 */
export class RecordingBroker
  implements Pick<Broker, 'publish' | 'name' | 'capabilities'>, Pick<BrokerAdmin, 'ping' | 'stats'>
{
  readonly name = 'recording';
  capabilities: Capabilities = {
    delayedDelivery: 'native',
    priority: 'native',
    redeliveryAfterCrash: 'none',
    ordering: 'none',
    pubsub: 'native',
    leaseExtension: false,
    delivery: 'at-least-once',
    ackDurable: 'on-resolve',
    crossProcess: false,
  };
  readonly published: { queue: string; envelope: Envelope; delayMs?: number; priority?: Priority }[] = [];
  failWith: Error | undefined;

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.failWith) throw this.failWith;
    for (const m of messages) {
      const entry: (typeof this.published)[number] = { queue, envelope: structuredClone(m.envelope) };
      if (m.delayMs !== undefined) entry.delayMs = m.delayMs;
      if (m.priority !== undefined) entry.priority = m.priority;
      this.published.push(entry);
    }
  }

  async ping(): Promise<void> {
    if (this.failWith) throw this.failWith;
  }

  async stats(_queue: string): Promise<QueueStats> {
    return { ready: this.published.length, inFlight: 0, delayed: 0, dead: 0 };
  }
}
