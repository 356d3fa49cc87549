import { MAX_ACK_BATCH, type PendingAck } from './ack-batcher';

/**
 * The longest an ack waits for the claim it rides with while its consumer still has leased work
 * to run; then it gets a transaction of its own (which also claims). Far below any lease, so a
 * finished job never outlives its lease waiting to be deleted.
 */
export const ACK_MAX_WAIT_MS = 20;

/**
 * Acks waiting for the claim loop's next transaction: ack() resolves once that transaction's
 * COMMIT holds its DELETE, so an ack is as durable as a DELETE of its own.
 */
export class CarriedAcks {
  #acks: PendingAck[] = [];
  /** Counts the batches begun, so that an earlier batch's timer cannot make this one overdue. */
  #batch = 0;
  /** The timer of the waiting batch has fired. */
  #overdue = false;

  /** `nudge` wakes the loop: at each ack, and ACK_MAX_WAIT_MS after the first of a batch. */
  constructor(private readonly nudge: () => void) {}

  get length(): number {
    return this.#acks.length;
  }

  add(id: string, token: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#acks.length === 0) {
        // Overdue is what the timer says, not a clock read at the wake-up: a timer counts whole
        // milliseconds and can fire up to 1 ms early by performance.now(). The loop woken then
        // saw nothing overdue and slept, with nothing left to wake it (carried-acks.test.ts).
        const batch = ++this.#batch;
        this.#overdue = false;
        setTimeout(() => {
          if (batch !== this.#batch) return;
          this.#overdue = true;
          this.nudge();
        }, ACK_MAX_WAIT_MS).unref();
      }
      this.#acks.push({ id, token, resolve, reject });
      this.nudge();
    });
  }

  /** The oldest has waited ACK_MAX_WAIT_MS: they go out now, with a claim or without. */
  overdue(): boolean {
    return this.#acks.length > 0 && this.#overdue;
  }

  /** Takes the next batch for a transaction (at most MAX_ACK_BATCH). */
  take(): PendingAck[] {
    return this.#acks.splice(0, MAX_ACK_BATCH);
  }
}
