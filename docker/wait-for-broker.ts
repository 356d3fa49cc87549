/**
 * The compose demo's start gate: `node apps/api/dist/wait-for-broker.js [seconds]` (compiled into
 * the api bundle by scripts/build.mjs; `node --import tsx docker/wait-for-broker.ts` from source)
 * connects to the broker that BROKER names, with the same driver and variables as the services,
 * and exits 0 once `ping()` succeeds; 1 when the time (default 180 s) runs out; 2 at once on a bad
 * configuration (an unknown BROKER, a malformed URL), which waiting would not fix.
 *
 * Why a gate: the brokers sit behind compose profiles, so the always-on services cannot name
 * them in `depends_on` (Compose v2 rejects a dependency on a service whose profile is off, and
 * `required: false` is unknown to Compose v1). Instead the services depend on this one-shot
 * service with `condition: service_completed_successfully`, and it waits for whichever broker is
 * selected. A driver's own connect is the real readiness test: RabbitMQ opens its port before it
 * accepts logins, Kafka before its metadata is ready, MySQL only after its init scripts.
 *
 * Run with BROKER=sqlite it opens (and creates) the queue file on the shared volume.
 */
import { createBrokerFromEnv } from '@polyqueue/brokers';
import { ConfigError, redact } from '@polyqueue/core';

const seconds = Number(process.argv[2] ?? 180);
if (!Number.isFinite(seconds) || seconds <= 0) {
  process.stderr.write(
    `wait-for-broker: the time limit must be a number of seconds (got ${process.argv[2]})\n`,
  );
  process.exit(2);
}
const name = process.env.BROKER?.trim() || 'sqlite';
const deadline = Date.now() + seconds * 1_000;
/** One attempt's limit: some clients (kafkajs) retry inside connect instead of failing. */
const attemptMs = 15_000;
const pauseMs = 2_000;

let attempt = 0;
let lastReason = '';
while (Date.now() < deadline) {
  attempt += 1;
  try {
    await withTimeout(tryOnce(), Math.min(attemptMs, Math.max(deadline - Date.now(), 1)));
    log(`broker ${name} is ready (attempt ${attempt})`);
    process.exit(0);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`wait-for-broker: ${error.message}\n`);
      process.exit(2);
    }
    const reason = redact(error instanceof Error ? error.message : String(error));
    // Every attempt's reason once, then only when it changes: a slow Kafka start is many
    // identical refusals.
    if (reason !== lastReason) log(`broker ${name} not ready yet (attempt ${attempt}): ${reason}`);
    lastReason = reason;
  }
  await new Promise((resolve) => setTimeout(resolve, pauseMs));
}
process.stderr.write(`wait-for-broker: broker ${name} was not ready within ${seconds} s: ${lastReason}\n`);
process.exit(1);

async function tryOnce(): Promise<void> {
  const broker = await createBrokerFromEnv(process.env);
  try {
    await broker.ping();
  } finally {
    await broker.close().catch(() => {});
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function log(message: string): void {
  process.stdout.write(`wait-for-broker: ${message}\n`);
}
