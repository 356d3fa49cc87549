import type { Channel, Message } from 'amqplib';

/**
 * The acks of one consumer channel, sent once per turn of the event loop: one basic.ack with
 * `multiple` for the longest run of deliveries, oldest first, that are all settled, and a plain
 * basic.ack for each settled delivery after a gap (so a slow handler at the head never holds
 * back the others' acks, nor the prefetch window they free). A delivery that is not settled is
 * never covered by a `multiple`: it comes back if the channel dies, as with one ack per message.
 *
 * Delivery tags on a channel rise by one per delivery, so the tags still open are kept in
 * arrival order and a `multiple` ack covers exactly a prefix of them. A delivery given back with
 * nack (requeue) is released here first, so no later `multiple` counts it.
 */
export class AckCoalescer {
  /** Delivery tags received and not yet acked or released, oldest first, from #head on. */
  #open: number[] = [];
  #head = 0;
  /** Open tags that are settled: true = ack to send, false = already sent or released. */
  readonly #settled = new Map<number, boolean>();
  #scheduled = false;

  constructor(private readonly channel: Channel) {}

  /** Called for every delivery as it arrives, in order. */
  received(message: Message): void {
    this.#open.push(message.fields.deliveryTag);
  }

  /** Acks this delivery at the end of the current turn (coalesced with the others). */
  ack(message: Message): void {
    this.#settled.set(message.fields.deliveryTag, true);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.flush);
  }

  /** Forgets a delivery that was nacked or otherwise settled on the channel directly. */
  release(message: Message): void {
    this.#settled.set(message.fields.deliveryTag, false);
  }

  /** Sends the waiting acks now (also before the channel closes). */
  readonly flush = (): void => {
    this.#scheduled = false;
    const open = this.#open;
    let upTo = -1;
    while (this.#head < open.length) {
      const tag = open[this.#head]!;
      const toSend = this.#settled.get(tag);
      if (toSend === undefined) break;
      this.#settled.delete(tag);
      if (toSend) upTo = tag;
      this.#head += 1;
    }
    if (this.#head > 1024 && this.#head * 2 > open.length) {
      this.#open = open.slice(this.#head);
      this.#head = 0;
    }
    try {
      if (upTo >= 0) this.channel.ack(tagged(upTo), true);
      // Settled after a gap: one ack each, now, rather than waiting behind the open delivery.
      for (const [tag, toSend] of this.#settled) {
        if (!toSend) continue;
        this.channel.ack(tagged(tag), false);
        this.#settled.set(tag, false);
      }
    } catch {
      // The channel closed: the broker requeues everything it had not seen acked.
    }
  };
}

/** amqplib's ack reads only the delivery tag of the message it is given. */
function tagged(deliveryTag: number): Message {
  return { fields: { deliveryTag } } as Message;
}
