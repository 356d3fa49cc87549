/**
 * The kafka driver's baseline: a hand-written kafkajs loop that puts on the wire what the driver
 * does for publish() and consume(), and nothing else.
 *
 * Mirrors packages/broker-kafka/src:
 * - kafka-broker.ts publish(), ensureQueue(), producer(), client.ts createKafka() and
 *   TopicRegistry: a topic of KAFKA_PARTITIONS (default 3) partitions created on first use
 *   (inside the timing, as the driver's first publish() creates its topics), a non-idempotent
 *   producer with the DefaultPartitioner, one sendBatch() per batch of B keyless messages
 *   with acks=-1.
 * - supervised-consumer.ts + partition-worker.ts: one consumer group member with the driver's
 *   session settings and maxWaitTimeInMs, fromBeginning, autoCommit off,
 *   eachBatchAutoResolve off, partitionsConsumedConcurrently = concurrency; eachBatch hands each
 *   message's parsed body to the async handler (raw-handler.ts) as soon as one of `concurrency`
 *   slots is free (without waiting for the batch to finish), resolveOffset() as it hands out,
 *   and commits per partition the offset below which every message is handled, one commit in
 *   flight per partition (the driver's watermark and commit chain, with its fast paths: the
 *   oldest message settling first skips the set, a settle during a commit costs no promise).
 * The client, topic, group join and clean-up are kafka-common.ts, shared with kafka-best.ts.
 * Not mirrored, being driver overhead rather than its wire protocol for these jobs: the retry and
 * dead topics and the delay mover's second consumer group.
 */
import { createEnvelope, encodeEnvelope } from '@polyqueue/core';
import { Countdown, perSecond, type Rates } from '../measure';
import type { BaselineOptions } from './index';
import { kafkaRun } from './kafka-common';
import { rawHandler } from './raw-handler';

/** A partition's handed-out offsets, in order, and how far it is handled and committed. */
interface Progress {
  open: number[];
  handled: Set<number>;
  watermark: number;
  committed: number;
  committing: boolean;
}

export async function kafkaRaw(options: BaselineOptions): Promise<Rates> {
  const run = kafkaRun(options, 'raw');
  const { topic, producer } = run;
  try {
    const t0 = performance.now();
    await run.open([{ name: 'retention.ms', value: String(7 * 24 * 3_600_000) }]);
    for (let i = 0; i < options.jobs; i += options.batch) {
      const n = Math.min(options.batch, options.jobs - i);
      const messages = Array.from({ length: n }, (_, k) => ({
        value: encodeEnvelope(createEnvelope('bench_job', { i: i + k })),
        headers: {},
      }));
      await producer.sendBatch({ topicMessages: [{ topic, messages }], acks: -1 });
    }
    const enqueuePerSec = perSecond(options.jobs, t0);

    const progress = new Map<number, Progress>();
    let inFlight = 0;
    const slotWaiters: Array<() => void> = [];
    const countdown = new Countdown(options.jobs);
    // Checked before the async loop is entered, so a message settling while a commit is in
    // flight costs no promise (as the driver's commit chain).
    const commit = (partition: number, p: Progress) => {
      if (!p.committing && p.watermark > p.committed) void commitLoop(partition, p).catch(() => {});
    };
    const commitLoop = async (partition: number, p: Progress) => {
      p.committing = true;
      try {
        while (p.watermark > p.committed) {
          const target = p.watermark;
          await c.commitOffsets([{ topic, partition, offset: String(target + 1) }]);
          p.committed = target;
        }
      } finally {
        p.committing = false;
      }
    };

    // Timed from the group join, as polyqueue is timed from its consumer's onReady.
    const { consumer: c, startedAt } = await run.join({ rebalanceTimeout: 60_000 });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, options.concurrency),
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        let p = progress.get(batch.partition);
        if (!p) {
          p = { open: [], handled: new Set(), watermark: -1, committed: -1, committing: false };
          progress.set(batch.partition, p);
        }
        const part = p;
        const beat = setInterval(() => heartbeat().catch(() => {}), 3_000);
        try {
          for (const message of batch.messages) {
            while (inFlight >= options.concurrency) await new Promise<void>((r) => slotWaiters.push(r));
            inFlight += 1;
            const offset = Number(message.offset);
            part.open.push(offset);
            resolveOffset(message.offset);
            void rawHandler(JSON.parse(message.value?.toString() ?? '')).then(() => {
              countdown.tick();
              if (offset === part.open[0] && part.handled.size === 0) {
                part.open.shift(); // the oldest settling first: the usual case, no set
                part.watermark = offset;
              } else {
                part.handled.add(offset);
                while (part.open.length > 0 && part.handled.has(part.open[0]!)) {
                  const head = part.open.shift()!;
                  part.handled.delete(head);
                  part.watermark = head;
                }
              }
              commit(batch.partition, part);
              inFlight -= 1;
              slotWaiters.shift()?.();
            });
          }
        } finally {
          clearInterval(beat);
        }
      },
    });
    await countdown.finished;
    const processPerSec = perSecond(options.jobs, startedAt());
    return { enqueuePerSec, processPerSec };
  } finally {
    await run.close();
  }
}
