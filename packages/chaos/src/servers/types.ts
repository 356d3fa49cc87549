/** The chaos run's brokers and what the run needs of each one's server. */

export const BROKERS = [
  'sqlite',
  'redis-list',
  'redis-reliable',
  'redis-streams',
  'rabbitmq',
  'kafka',
  'sqs',
  'mysql',
] as const;
export type BrokerName = (typeof BROKERS)[number];

export interface BrokerContext {
  dir: string;
  prefix: string;
  /** The lease the run asks the broker for (ms). */
  leaseMs: number;
  repoRoot: string;
  say: (line: string) => void;
  /** redis-reliable, redis-streams: on the local Redis Cluster, the restart a master failover. */
  cluster?: boolean;
}

/** What a restart that knows better than "the call returned" says about itself. */
export interface RestartResult {
  /** Date.now() when the broker served the queue again (a failover: the promoted replica). */
  servingAt: number;
  detail: string;
}

export function isRestartResult(value: unknown): value is RestartResult {
  return (
    typeof value === 'object' && value !== null && typeof (value as RestartResult).servingAt === 'number'
  );
}

/** The run's traces in a state store on the broker's own server, to delete at the end. */
export interface RunTraces {
  jobIds: string[];
  idempotencyKeys: string[];
}

export interface BrokerServer {
  name: BrokerName;
  /** False only for redis-list (BLPOP): a job popped by a worker that dies is gone. */
  atLeastOnce: boolean;
  /** How long a dead consumer's job takes to come back, at most (ms): the unit of "recovery". */
  leaseMs: number;
  /** What leaseMs is, for this broker. */
  leaseIs: string;
  /** Variables for the services (BROKER, the URL, prefix, lease). */
  env: Record<string, string>;
  /**
   * Stops and starts the broker; undefined when there is no server to restart (sqlite). May
   * resolve to a RestartResult (isRestartResult) saying when the broker served again.
   */
  restart?: () => Promise<unknown>;
  /** The restart fault's target in the report (default: the broker's name). */
  restartTarget?: string;
  /** STATE_URL the run uses unless --state-url says otherwise (default: a sqlite file). */
  stateUrl?: string;
  notes: string[];
  /** More notes, asked for once the faults and the wait are over (before the report). */
  endNotes?: () => Promise<string[]>;
  /**
   * Stops the run's own server, removes the run's queues/tables, leaves shared servers running;
   * with `traces`, also the run's records in a state store at `stateUrl`.
   */
  teardown(traces?: RunTraces): Promise<void>;
  /** Last resort on exit: synchronous, no waiting. */
  emergencyStop(): void;
}
