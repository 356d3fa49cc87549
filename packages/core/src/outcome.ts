import type { Envelope } from './envelope';

/** `cancelled`: the job's record said so (DELETE /v1/jobs/:id); acked, never retried. */
export type Outcome = 'succeeded' | 'retrying' | 'dead' | 'skipped_duplicate' | 'cancelled';

/** What the worker runtime tells its onOutcome hook at each state change of a delivery. */
export interface OutcomeEvent {
  envelope: Envelope | undefined;
  messageId: string;
  queue: string;
  outcome: Outcome | 'processing';
  attempt: number;
  /** retrying, dead: the reason, as the record's lastError keeps it. */
  error?: string;
  /** retrying, dead after a handler threw: what it threw (the attempt history keeps its stack). */
  failure?: unknown;
  result?: unknown;
  retryInMs?: number;
}
