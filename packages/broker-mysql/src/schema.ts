/**
 * The tables of one logical queue and how a row becomes a message body.
 *
 * `polyqueue_Q` keeps the classic Q4M example's columns (id, job_type, payload, created_at) and
 * gives every other column a default, so a producer in any language enqueues with
 *
 *     INSERT INTO polyqueue_email (job_type, payload) VALUES ('send_email', '{"to": ...}');
 *
 * One indexed column decides whether a row can be handed out: `available_at`. A new row is
 * available at once; a delayed publish or a retry sets it in the future; a claim sets it to the
 * end of the lease and writes `lease_owner`. While `lease_owner` is set, `available_at` IS the
 * lease expiry, so a dead consumer's job becomes claimable when its lease runs out with no
 * sweeper, and a claim is one ordered scan of the `claim_order` index.
 */

import { quoteIdentifier, type TableNames } from './config';
import { type Pool, retryOnStaleConnection } from './pool';

export function queueTableDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(table)} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  job_type VARCHAR(100) NOT NULL DEFAULT '',
  payload LONGTEXT NULL,
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  body LONGTEXT NULL COMMENT 'the envelope as polyqueue published it; NULL for rows written by SQL',
  priority TINYINT UNSIGNED NOT NULL DEFAULT 1 COMMENT '0 high, 1 normal, 2 low',
  available_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'claimable from; the lease expiry while leased',
  attempt INT UNSIGNED NOT NULL DEFAULT 1,
  lease_owner VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL DEFAULT NULL,
  PRIMARY KEY (id),
  KEY claim_order (priority, available_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

export function deadTableDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(table)} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  job_id VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'envelope id, or the source row id',
  message_id BIGINT UNSIGNED NOT NULL COMMENT 'id of the queue row it came from',
  job_type VARCHAR(100) NOT NULL DEFAULT '',
  payload LONGTEXT NULL,
  body LONGTEXT NULL,
  priority TINYINT UNSIGNED NOT NULL DEFAULT 1,
  attempt INT UNSIGNED NOT NULL DEFAULT 1,
  reason TEXT NOT NULL,
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  dead_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY job_id (job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

export function subscriptionsDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(table)} (
  topic VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  group_name VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (topic, group_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

/** Creates a queue's tables once per process (CREATE TABLE IF NOT EXISTS is cheap but takes a metadata lock). */
export class TableCache {
  readonly #ready = new Map<string, Promise<void>>();
  constructor(private readonly pool: Pool) {}

  ensure(tables: TableNames): Promise<void> {
    return this.#once(tables.queue, async () => {
      await this.pool.query(queueTableDdl(tables.queue));
      await this.pool.query(deadTableDdl(tables.dead));
    });
  }

  ensureSubscriptions(table: string): Promise<void> {
    return this.#once(table, async () => {
      await this.pool.query(subscriptionsDdl(table));
    });
  }

  #once(key: string, create: () => Promise<void>): Promise<void> {
    let ready = this.#ready.get(key);
    if (!ready) {
      ready = retryOnStaleConnection(create);
      // A failure (server down) is not remembered: the next call tries again.
      ready.catch(() => this.#ready.delete(key));
      this.#ready.set(key, ready);
    }
    return ready;
  }
}

export interface MessageRow {
  id: string;
  job_type: string;
  payload: string | null;
  body: string | null;
  attempt: number;
}

/**
 * The message body of a row: the stored envelope when polyqueue published it, else the foreign
 * shape `{"type": job_type, "payload": <payload>}` that decodeEnvelope accepts (its id becomes the
 * row id). A payload that is not JSON yields the payload text itself, which decodeEnvelope
 * rejects as "body is not JSON" with the parser's message, so the dead letter says why.
 */
export function rowBody(row: Pick<MessageRow, 'job_type' | 'payload' | 'body'>): string {
  if (row.body !== null) return row.body;
  const text = row.payload ?? 'null';
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    return text;
  }
  return JSON.stringify({ type: row.job_type, payload });
}
