import type { Channel, Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { AckCoalescer } from '../src/ack-coalescer';

/** A channel that records its acks as [deliveryTag, multiple]. */
function recordingChannel() {
  const acks: Array<[number, boolean]> = [];
  const channel = {
    ack: (message: Message, multiple?: boolean) => acks.push([message.fields.deliveryTag, multiple ?? false]),
  } as unknown as Channel;
  return { channel, acks };
}

const message = (deliveryTag: number) => ({ fields: { deliveryTag } }) as Message;

describe('AckCoalescer', () => {
  it('acks a run of settled deliveries with one multiple ack', () => {
    const { channel, acks } = recordingChannel();
    const coalescer = new AckCoalescer(channel);
    for (let tag = 1; tag <= 5; tag++) coalescer.received(message(tag));
    for (const tag of [3, 1, 2]) coalescer.ack(message(tag));
    coalescer.flush();
    expect(acks).toEqual([[3, true]]);
  });

  it('never covers an unsettled delivery: those after it are acked one by one', () => {
    const { channel, acks } = recordingChannel();
    const coalescer = new AckCoalescer(channel);
    for (let tag = 1; tag <= 5; tag++) coalescer.received(message(tag));
    for (const tag of [1, 3, 4]) coalescer.ack(message(tag));
    coalescer.flush();
    expect(acks).toEqual([
      [1, true],
      [3, false],
      [4, false],
    ]);
    // Once the gap is settled, the run goes on past the deliveries already acked alone.
    coalescer.ack(message(2));
    coalescer.ack(message(5));
    coalescer.flush();
    expect(acks.slice(3)).toEqual([[5, true]]);
  });

  it('lets a run pass a delivery given back with nack, without acking it', () => {
    const { channel, acks } = recordingChannel();
    const coalescer = new AckCoalescer(channel);
    for (let tag = 1; tag <= 3; tag++) coalescer.received(message(tag));
    coalescer.release(message(1));
    coalescer.flush();
    expect(acks).toEqual([]);
    coalescer.ack(message(2));
    coalescer.ack(message(3));
    coalescer.flush();
    expect(acks).toEqual([[3, true]]);
  });
});
