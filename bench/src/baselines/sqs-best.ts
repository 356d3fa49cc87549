/**
 * sqs, best raw loop: the fastest at-least-once producer and consumer @aws-sdk/client-sqs
 * allows on a standard queue.
 *
 *   enqueue  SendMessageBatch of 10 (the API's maximum), 32 requests in flight
 *   process  8 pollers, each: ReceiveMessage 10 (long polling), every message handled at once,
 *            one DeleteMessageBatch for the ten sent while the poller's next receive runs
 *            (one delete in flight per poller)
 *
 * Why it stays correct: a message is deleted only after its handler resolved; until then it is
 * invisible for the visibility timeout and comes back if the poller dies. A partial
 * DeleteMessageBatch failure fails the run (those messages would be redelivered).
 */
import { setMaxListeners } from 'node:events';
import { perSecond, type Rates } from '../measure';
import { bodyChunks, windowed } from './best-loops';
import type { BaselineOptions } from './index';
import { rawHandler } from './raw-handler';
import { sqsRun } from './sqs-common';

const SENDS_IN_FLIGHT = 32;
const POLLERS = 8;

export async function bestSqs(options: BaselineOptions): Promise<Rates> {
  const run = sqsRun(options, 'best', 35_000);
  try {
    const chunks = bodyChunks(options.jobs, 10);
    const t0 = performance.now();
    const queueUrl = await run.create();
    await windowed(chunks, SENDS_IN_FLIGHT, (bodies) =>
      run.send(
        queueUrl,
        bodies.map((MessageBody, i) => ({ Id: `e${i}`, MessageBody })),
      ),
    );
    const enqueuePerSec = perSecond(options.jobs, t0);

    const stop = new AbortController();
    setMaxListeners(POLLERS * 2, stop.signal); // every poller's receive listens to it
    let done = 0;
    let ended = 0;
    const deleteBatch = async (messages: { ReceiptHandle?: string }[]) => {
      const failed = await run.deleteBatch(
        queueUrl,
        messages.map((m) => m.ReceiptHandle!),
      );
      if (failed > 0) throw new Error(`DeleteMessageBatch: ${failed} failed`);
      done += messages.length;
      if (done >= options.jobs) {
        ended = performance.now();
        stop.abort();
      }
    };
    const poller = async () => {
      let deleting: Promise<void> = Promise.resolve();
      while (done < options.jobs) {
        const messages = await run.receive(
          { QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 },
          stop.signal,
        );
        if (!messages) break;
        if (messages.length === 0) continue;
        await Promise.all(messages.map((m) => rawHandler(JSON.parse(m.Body ?? ''))));
        await deleting;
        deleting = deleteBatch(messages);
      }
      await deleting;
    };
    const t1 = performance.now();
    await Promise.all(Array.from({ length: POLLERS }, poller));
    return { enqueuePerSec, processPerSec: options.jobs / ((ended - t1) / 1000) };
  } finally {
    await run.close();
  }
}
