/**
 * rabbitmq, best raw loop: the fastest at-least-once publisher and consumer amqplib allows on
 * the driver's queue (durable, x-max-priority 2, persistent messages; AMQP_QUEUE_TYPE=quorum
 * as the driver does).
 *
 *   enqueue  publisher confirms with a window of 5,000 unconfirmed messages (each message's
 *            confirm callback frees its place) instead of a batch at a time
 *   process  prefetch 500; every delivery handled as it arrives; acks with `multiple`: once per
 *            macrotask, one basic.ack covers every delivery up to the newest one whose
 *            predecessors were all handled
 *
 * Why it stays correct: a publish counts only once the broker confirmed it (persisted); an ack
 * with `multiple` is sent only for a prefix of deliveries that were all handled, so a delivery
 * whose handler has not finished is never acked and comes back if the channel dies.
 */
import { createEnvelope } from '@polyqueue/core';
import type { Channel, ConsumeMessage } from 'amqplib';
import { Countdown, perSecond, type Rates } from '../measure';
import { amqpRun } from './amqp-common';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';

const CONFIRM_WINDOW = 5_000;
const PREFETCH = 500;

export async function bestRabbitmq(options: BaselineOptions): Promise<Rates> {
  const run = await amqpRun(options, 'best');
  try {
    const t0 = performance.now();
    const publisher = await run.declare();
    let unconfirmed = 0;
    let nacked = 0;
    let roomWaiter: (() => void) | undefined;
    const confirmed = (error: unknown) => {
      if (error) nacked += 1;
      unconfirmed -= 1;
      if (roomWaiter && unconfirmed <= CONFIRM_WINDOW / 2) {
        const wake = roomWaiter;
        roomWaiter = undefined;
        wake();
      }
    };
    for (let i = 0; i < options.jobs; i++) {
      while (unconfirmed >= CONFIRM_WINDOW)
        await new Promise<void>((resolve) => {
          roomWaiter = resolve;
        });
      unconfirmed += 1;
      await run.publish(publisher, createEnvelope('bench_job', { i }), {}, confirmed);
    }
    await publisher.waitForConfirms();
    if (nacked > 0) throw new Error(`rabbitmq best: ${nacked} publishes nacked`);
    const enqueuePerSec = perSecond(options.jobs, t0);
    await publisher.close();

    const countdown = new Countdown(options.jobs);
    // Deliveries in arrival (delivery-tag) order, each with whether its handler resolved.
    const open: { message: ConsumeMessage; handled: boolean }[] = [];
    let flushScheduled = false;
    const flush = (consumer: Channel) => {
      flushScheduled = false;
      let last: ConsumeMessage | undefined;
      let count = 0;
      while (open.length > 0 && open[0]!.handled) {
        last = open.shift()!.message;
        count += 1;
      }
      if (!last) return;
      consumer.ack(last, true);
      countdown.tick(count);
    };
    const processPerSec = await run.consume(
      { confirm: false, prefetch: PREFETCH },
      (consumer, message) => {
        const entry = { message, handled: false };
        open.push(entry);
        void rawHandler(JSON.parse(message.content.toString('utf8'))).then(() => {
          entry.handled = true;
          if (!flushScheduled) {
            flushScheduled = true;
            setImmediate(flush, consumer);
          }
        });
      },
      countdown.finished,
    );
    return { enqueuePerSec, processPerSec };
  } finally {
    await run.close();
  }
}
