/**
 * kafka, best raw loop: the fastest at-least-once producer and consumer kafkajs allows on a
 * topic of KAFKA_PARTITIONS (default 3) partitions, as the driver creates.
 *
 *   enqueue  sendBatch of 1,000 messages per request with acks=-1 (all in-sync replicas),
 *            4 requests in flight
 *   process  eachBatch: every message of the fetched batch handled at once, then one
 *            commitOffsets per batch (the offset after its last message); one eachBatch per
 *            partition at a time (partitionsConsumedConcurrently = partitions)
 *
 * Why it stays correct: a partition's offset is committed only after every message before it
 * was handled, so a consumer that dies resumes from the last commit and redelivers what it had
 * not finished. Against the driver it gives up handing out a slow batch's messages while
 * others wait (a slow message holds its whole partition's batch here).
 */
import { Countdown, perSecond, type Rates } from '../measure';
import { bodyChunks, windowed } from './best-loops';
import type { BaselineOptions } from './index';
import { kafkaRun } from './kafka-common';
import { rawHandler } from './raw-handler';

const SEND_BATCH = 1_000;
const SENDS_IN_FLIGHT = 4;

export async function bestKafka(options: BaselineOptions): Promise<Rates> {
  const run = kafkaRun(options, 'best');
  const { topic, producer } = run;
  try {
    const chunks = bodyChunks(options.jobs, SEND_BATCH);
    const t0 = performance.now();
    await run.open();
    await windowed(chunks, SENDS_IN_FLIGHT, (bodies) =>
      producer.sendBatch({
        topicMessages: [{ topic, messages: bodies.map((value) => ({ value })) }],
        acks: -1,
      }),
    );
    const enqueuePerSec = perSecond(options.jobs, t0);

    const countdown = new Countdown(options.jobs);
    // Timed from the group join, as the other Kafka rows: joining takes seconds.
    const { consumer: c, startedAt } = await run.join();
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: run.partitions,
      eachBatch: async ({ batch, resolveOffset }) => {
        if (batch.messages.length === 0) return;
        await Promise.all(batch.messages.map((m) => rawHandler(JSON.parse(m.value?.toString() ?? ''))));
        const last = batch.lastOffset();
        resolveOffset(last);
        await c.commitOffsets([{ topic, partition: batch.partition, offset: String(Number(last) + 1) }]);
        countdown.tick(batch.messages.length);
      },
    });
    await countdown.finished;
    const processPerSec = perSecond(options.jobs, startedAt());
    return { enqueuePerSec, processPerSec };
  } finally {
    await run.close();
  }
}
