import { AlreadySettledError, type Delivery, withAttempt } from '@polyqueue/core';
import { BodyDelivery } from './body-delivery';
import { delayedMember } from './keys';

/**
 * A delivery whose every outcome is one job of a settle script call, batched with the other
 * settles of its consumer (settle-batcher.ts; redis-reliable, redis-streams). ack and retry, and
 * the guard that a delivery settles once, are the same for both; each driver says in runSettle
 * which ARGV its script takes for the job, and what its dead letter records.
 */
export abstract class ScriptedDelivery extends BodyDelivery implements Delivery {
  /** Set by the first outcome; a lease or claim is not renewed after it. */
  protected settled = false;

  abstract deadLetter(reason: string): Promise<void>;
  abstract extend(ms: number): Promise<void>;

  /**
   * Queues this job's part of the driver's settle script (`action` and the ARGV that follow it);
   * resolves once Redis answered the batch it went out in.
   */
  protected abstract runSettle(action: string, ...rest: (string | number)[]): Promise<void>;

  ack(): Promise<void> {
    return this.settle('ack');
  }

  retry(delayMs: number): Promise<void> {
    const next = withAttempt(this.body, this.attempt + 1, this.messageId);
    return delayMs > 0
      ? this.settle('retry', Date.now() + delayMs, delayedMember('normal', next))
      : this.settle('retry', 0, next);
  }

  /** `action` is the script's name for the outcome: ack, retry or dead. */
  protected async settle(action: 'ack' | 'retry' | 'dead', ...rest: (string | number)[]): Promise<void> {
    if (this.settled)
      throw new AlreadySettledError(this.messageId, action === 'dead' ? 'deadLetter' : action);
    this.settled = true;
    await this.runSettle(action, ...rest);
  }
}
