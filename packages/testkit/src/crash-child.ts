/**
 * A consumer that takes one delivery, reports it to the parent test over IPC, and then hangs
 * without settling it, so the test can SIGKILL it mid-job. Run by the conformance suite as
 * `node --import tsx crash-child.ts <queue> [ack]` with BROKER, the driver's variables and
 * POLYQUEUE_DRIVER_MODULE set: the driver package's entry, whose `drivers[BROKER]` it connects
 * with (the suite's broker factory is a function, which cannot cross into this process).
 * With `ack` it first acks the delivery and reports only once ack() has resolved, then hangs:
 * the SIGKILL then lands right after a resolved ack, with no close() to flush anything.
 */
import { type BrokerDriver, decodeEnvelope } from '@polyqueue/core';
import { connectDriver } from './driver-broker';

const [queue, mode] = process.argv.slice(2);
const { BROKER: name, POLYQUEUE_DRIVER_MODULE: driverModule } = process.env;
if (!queue || !process.send || !name || !driverModule) {
  console.error(
    'usage: forked with IPC, argv: <queue> [ack], env: BROKER and POLYQUEUE_DRIVER_MODULE ' +
      "(the conformance test's driverModule option)",
  );
  process.exit(2);
}
const send = process.send.bind(process);
const { drivers } = (await import(driverModule)) as { drivers: Record<string, BrokerDriver> };
const driver = drivers[name];
if (!driver) {
  console.error(`${driverModule} has no driver ${name}; it has ${Object.keys(drivers).join(', ')}`);
  process.exit(2);
}
const broker = await connectDriver(driver, process.env);
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
