/**
 * A consumer that takes one delivery, reports it to the parent test over IPC, and then hangs
 * without settling it, so the test can SIGKILL it mid-job. Run by the conformance suite as
 * `node --import tsx crash-child.ts <queue> [ack]` with BROKER and the driver's variables set.
 * With `ack` it first acks the delivery and reports only once ack() has resolved, then hangs:
 * the SIGKILL then lands right after a resolved ack, with no close() to flush anything.
 */
import { createBrokerFromEnv } from '@polyqueue/brokers';
import { decodeEnvelope } from '@polyqueue/core';

const [queue, mode] = process.argv.slice(2);
if (!queue || !process.send) {
  console.error('usage: forked with IPC, argv: <queue> [ack]');
  process.exit(2);
}
const send = process.send.bind(process);
const broker = await createBrokerFromEnv(process.env);
await broker.consume(
  queue,
  async (delivery) => {
    const decoded = decodeEnvelope(delivery.body, delivery.messageId);
    if (mode === 'ack') await delivery.ack();
    send({ type: 'got', id: decoded.ok ? decoded.envelope.id : delivery.messageId });
    await new Promise(() => {}); // mid-job forever: the parent kills this process
  },
  { concurrency: 1, signal: new AbortController().signal, onReady: () => send({ type: 'ready' }) },
);
