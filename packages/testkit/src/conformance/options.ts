import type { CompleteBroker, QueueLimits } from '@polyqueue/core';

/** What a driver's conformance test passes to runConformanceSuite. */
export interface ConformanceOptions {
  /** The BROKER name: the suite's title, and the driver's key in `drivers` of driverModule. */
  broker: string;
  /**
   * Connects a new broker to the test's server: the suite's constructor, as Watermill's
   * TestPubSub takes one (e.g. `() => connectDriver(drivers.sqlite, env)` from the driver's own
   * package). Called for the suite's broker and for each second connection a scenario opens.
   */
  createBroker: () => Promise<CompleteBroker>;
  /**
   * The driver package's entry as a file URL (`new URL('../src/index.ts', import.meta.url).href`):
   * the crash scenarios' forked consumer connects with its `drivers[broker]` and `env`, as the
   * factory, a function, cannot cross into another process. Needed where the broker is crossProcess.
   */
  driverModule?: string;
  /** The driver's variables; use short leases so the crash scenario is quick. */
  env: Record<string, string>;
  /** Which server and how to start it, for the failure message when it cannot be reached. */
  serverHint: string;
  /**
   * Writes a body straight to the queue with the broker's own client, the way a producer in
   * another language would (for the malformed and foreign-shape scenarios).
   */
  publishRaw: (queue: string, body: string) => Promise<void>;
  /** Stops and starts the real server; resolves when it accepts connections again. */
  restartServer?: () => Promise<void>;
  /**
   * Required with restartServer: whether the server, as this test runs it, keeps queued and
   * unacknowledged messages across that restart (RabbitMQ durable queues, Kafka, MySQL: true;
   * Redis without AOF, ElasticMQ in memory: false). Declared by the driver's test, never
   * guessed: when true the restart scenario loses no job; when false it only requires that
   * consuming resumes, and reports how many jobs the restart took.
   */
  durableAcrossRestart?: boolean;
  /** The lease (or visibility timeout) the env sets, in ms; bounds the crash scenario's wait and sets the heartbeat scenario's lease. */
  leaseMs?: number;
  /** Messages in the batch scenario (default 1,000). */
  batchSize?: number;
  /** How long to wait for one expected delivery (default 20 s). */
  timeoutMs?: number;
  /**
   * Opens a client of a real state store's QueueLimits (the limit scenarios open two, one per
   * worker, as two processes would); without it both workers share one MemoryQueueLimits.
   */
  createLimits?: () => Promise<QueueLimits>;
}

let queueCounter = 0;
/** A fresh queue name per test: lower-case letters and digits, valid on every broker. */
export function uniqueQueueName(label: string): string {
  queueCounter += 1;
  return `${label}${queueCounter}x${Date.now().toString(36).slice(-5)}${Math.random().toString(36).slice(2, 6)}`;
}
