import type { Delivery, DeliveryHandler, Logger } from '@polyqueue/core';

/**
 * A leased consumer's next batch, read while the jobs of the last one run and settle
 * (redis-streams, redis-reliable): the pull loop fetches only once handler slots are free, and
 * a slot is free only once its job's settle was answered, so without this every batch of a
 * backlog pays a fetch round trip and then a settle round trip, one after the other. Here a
 * fetch that hands out a full batch (the queue has more) also starts a non-blocking read of the
 * next one, at most one in flight, so the next fetch usually finds its jobs waiting: the read's
 * round trip overlaps the settles. A queue that is not backed up is read as before (the
 * driver's blocking fetch, nothing read ahead), so an idle consumer costs no extra command.
 *
 * What it holds: at most `capacity` (the concurrency) deliveries beyond the running ones, each
 * read as the driver's own fetch reads it, so each is pending in the group or leased in the
 * processing list like a running job. A buffered delivery's lease is renewed (extend) every
 * leaseMs / 6 while it waits, so it is never older than leaseMs / 3 when its handler starts and
 * no other consumer takes it over meanwhile. When the consumer stops, the read in flight (which
 * never blocks) is awaited unless the connection is down, and every delivery still buffered is
 * handled before the consumer returns, as the jobs of a fetch that returns after the abort
 * are: nothing read is left unhandled by a consumer that stops cleanly.
 */
export class ReadAhead {
  readonly #o: ReadAheadOptions;
  /** Read, not yet handed out, oldest first; #renewedAt[i] is when #buffer[i] was read or renewed. */
  #buffer: Delivery[] = [];
  #renewedAt: number[] = [];
  #reading: Promise<void> | undefined;
  /** The last read filled what it asked for: the queue likely has more, so read ahead. */
  #backlog = false;
  readonly #timer: NodeJS.Timeout;

  constructor(options: ReadAheadOptions) {
    this.#o = { ...options, capacity: Math.max(1, options.capacity) };
    this.#timer = setInterval(() => this.#renew(), Math.max(1, Math.floor(options.leaseMs / 6)));
    this.#timer.unref();
  }

  /** The pull loop's fetch: up to `max` deliveries, from the buffer when it has any. */
  async fetch(max: number): Promise<Delivery[]> {
    if (this.#buffer.length === 0 && this.#reading) await this.#reading;
    if (this.#buffer.length === 0) {
      const read = await this.#o.read(max);
      this.#backlog = read.length === max;
      if (this.#backlog) this.#readAhead();
      return read;
    }
    const taken = this.#buffer.splice(0, max);
    this.#renewedAt.splice(0, taken.length);
    if (this.#backlog) this.#readAhead();
    return taken;
  }

  /**
   * After the pull loop ended: stops renewing, awaits the read in flight unless `abandon`
   * says the connection is down, and hands every delivery still buffered to the handler;
   * resolves once they all finished.
   */
  async drain(handler: DeliveryHandler, abandon: () => boolean): Promise<void> {
    clearInterval(this.#timer);
    if (this.#reading && !abandon()) await this.#reading;
    const left = this.#buffer.splice(0);
    this.#renewedAt = [];
    await Promise.all(
      left.map(async (delivery) => {
        try {
          await handler(delivery);
        } catch (error) {
          this.#o.logger.error(
            { err: error, messageId: delivery.messageId },
            'delivery handler failed without settling',
          );
        }
      }),
    );
  }

  #readAhead(): void {
    const room = this.#o.capacity - this.#buffer.length;
    if (this.#reading || room <= 0) return;
    this.#reading = this.#o.readNow(room).then(
      (deliveries) => {
        this.#reading = undefined;
        this.#backlog = deliveries.length === room;
        const now = Date.now();
        for (const delivery of deliveries) {
          this.#buffer.push(delivery);
          this.#renewedAt.push(now);
        }
      },
      (error: unknown) => {
        // The next fetch reads (and fails, backing off) as it would have without read-ahead.
        this.#reading = undefined;
        this.#backlog = false;
        this.#o.logger.warn({ err: error }, 'reading ahead failed');
      },
    );
  }

  /** Renews the lease of every buffered delivery not renewed for leaseMs / 6. */
  #renew(): void {
    const now = Date.now();
    const due = now - this.#o.leaseMs / 6;
    for (let i = 0; i < this.#buffer.length; i++) {
      if (this.#renewedAt[i]! > due) continue;
      this.#renewedAt[i] = now;
      const delivery = this.#buffer[i]!;
      delivery
        .extend(this.#o.leaseMs)
        .catch((error) =>
          this.#o.logger.warn({ err: error, messageId: delivery.messageId }, 'lease extension failed'),
        );
    }
  }
}

export interface ReadAheadOptions {
  /** The driver's fetch: up to `max` deliveries, blocking up to REDIS_BLOCK_MS for the first. */
  read: (max: number) => Promise<Delivery[]>;
  /** The same without blocking: what is there now (none when the queue is empty). */
  readNow: (max: number) => Promise<Delivery[]>;
  /** How many deliveries may wait beyond the running ones: the consumer's concurrency. */
  capacity: number;
  /** The driver's lease (REDIS_LEASE_MS). */
  leaseMs: number;
  logger: Logger;
}
