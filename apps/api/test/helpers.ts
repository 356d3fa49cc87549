import type { Broker, BrokerAdmin, Envelope, OutgoingMessage, QueueStats } from '@polyqueue/core';

/** The part of a broker the API uses, recording what it publishes; set failWith to simulate an outage. */
export class RecordingBroker implements Pick<Broker, 'publish'>, Pick<BrokerAdmin, 'ping' | 'stats'> {
  readonly published: { queue: string; envelope: Envelope }[] = [];
  failWith: Error | undefined;

  async publish(queue: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.failWith) throw this.failWith;
    for (const m of messages) this.published.push({ queue, envelope: structuredClone(m.envelope) });
  }

  async ping(): Promise<void> {
    if (this.failWith) throw this.failWith;
  }

  async stats(_queue: string): Promise<QueueStats> {
    return { ready: this.published.length, inFlight: 0, delayed: 0, dead: 0 };
  }
}
