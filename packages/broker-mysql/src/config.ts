import { createHash } from 'node:crypto';
import { intVariable, urlVariable } from '@polyqueue/core';
import { z } from 'zod';

/**
 * The environment variables the mysql driver reads. Keys are variable names; every one has a
 * default, so `BROKER=mysql` alone talks to a local server.
 */
export const mysqlEnvSchema = z.object({
  /** mysql://user:password@host:3306/database; the database is created when missing. */
  MYSQL_URL: urlVariable(['mysql:']).default('mysql://root@127.0.0.1:3306/polyqueue'),
  POLYQUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_]+$/, 'must be letters, digits or "_" (it starts every table name)')
    .default('polyqueue'),
  /** How long a claimed job stays invisible to other consumers before it comes back (extend() renews it). */
  MYSQL_LEASE_MS: intVariable(30_000, 100, 24 * 3_600_000),
  /** The first pause of an idle consumer between polls; it doubles on each empty poll... */
  MYSQL_POLL_MIN_MS: intVariable(20, 1, 60_000),
  /** ...up to this bound: an idle queue costs one small query per consumer this often. */
  MYSQL_POLL_MAX_MS: intVariable(500, 1, 600_000),
  /**
   * The most jobs one claim transaction leases: the consumer's free slots plus a prefetch sized to
   * about 100 ms of measured handler time (consumer.ts). One durable commit per claim.
   */
  MYSQL_CLAIM_BATCH: intVariable(256, 1, 1_000),
  /** Connections in the pool shared by publishers, consumers and acks of one broker. */
  MYSQL_POOL_SIZE: intVariable(10, 1, 500),
});

export type MysqlConfig = z.infer<typeof mysqlEnvSchema>;

/** The settings the broker itself uses, in milliseconds. */
export interface MysqlBrokerOptions {
  url: string;
  prefix: string;
  leaseMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  claimBatch: number;
  poolSize: number;
}

export function brokerOptions(config: MysqlConfig): MysqlBrokerOptions {
  return {
    url: config.MYSQL_URL,
    prefix: config.POLYQUEUE_PREFIX,
    leaseMs: config.MYSQL_LEASE_MS,
    pollMinMs: Math.min(config.MYSQL_POLL_MIN_MS, config.MYSQL_POLL_MAX_MS),
    pollMaxMs: config.MYSQL_POLL_MAX_MS,
    claimBatch: config.MYSQL_CLAIM_BATCH,
    poolSize: config.MYSQL_POOL_SIZE,
  };
}

/** MySQL's limit on identifier length; `_dead` must still fit after the queue table's name. */
const MAX_IDENTIFIER = 64;
const DEAD_SUFFIX = '_dead';

export interface TableNames {
  /** The queue table, `polyqueue_Q` (DESIGN.md). */
  queue: string;
  /** Its dead letters, `polyqueue_Q_dead`. */
  dead: string;
}

/**
 * `polyqueue_email` and `polyqueue_email_dead` for queue `email`. Characters a table name cannot
 * hold become `_`; a name too long for MySQL keeps its start and gains a short hash, so two long
 * queue names never share a table.
 */
export function tableNames(prefix: string, queue: string): TableNames {
  const safe = queue.replace(/[^A-Za-z0-9_$]/g, '_');
  let base = `${prefix}_${safe}`;
  // A replaced character or a cut could make two queues share a table; a hash of the name prevents it.
  if (safe !== queue || base.length + DEAD_SUFFIX.length > MAX_IDENTIFIER) {
    const hash = createHash('sha256').update(queue).digest('hex').slice(0, 8);
    base = `${base.slice(0, MAX_IDENTIFIER - DEAD_SUFFIX.length - hash.length - 1)}_${hash}`;
  }
  return { queue: base, dead: `${base}${DEAD_SUFFIX}` };
}

/** A group's own queue on a topic: `polyqueue_events_<topic>__<group>`, with retries and dead letters. */
export function groupTableNames(prefix: string, topic: string, group: string): TableNames {
  return tableNames(prefix, `events_${topic}__${group}`);
}

/** The table recording which groups subscribe to which topic. */
export function subscriptionsTable(prefix: string): string {
  return `${prefix}_subscriptions`;
}

/** Quotes an identifier that tableNames produced (letters, digits, `_`, `$` only). */
export function quoteIdentifier(name: string): string {
  if (!/^[A-Za-z0-9_$]+$/.test(name)) throw new Error(`not a safe MySQL identifier: ${name}`);
  return `\`${name}\``;
}

/** Priority column values: smaller is handed out first. */
export const PRIORITY_VALUE = { high: 0, normal: 1, low: 2 } as const;
