import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMysqlStateStore } from '../src/index';
import { connect, MYSQL_URL } from './server';

describe('mysql state store: tables made by an earlier version', () => {
  it('gains the progress and payload columns at open, keeps the records, and records progress on them', async () => {
    // A prefix of this run's own, so the tables are made here in the old layout.
    const prefix = `pq_migrate_${randomUUID().slice(0, 8)}`;
    const sql = await connect();
    try {
      await sql.query(`CREATE TABLE ${prefix}_jobs (
        id VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, type VARCHAR(100) NOT NULL,
        queue VARCHAR(200) NOT NULL, status VARCHAR(20) NOT NULL, attempts INT UNSIGNED NOT NULL DEFAULT 0,
        last_error TEXT NULL, result LONGTEXT NULL,
        idempotency_key VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, request_hash VARCHAR(128) NULL,
        created_at DATETIME(3) NOT NULL, updated_at DATETIME(3) NOT NULL,
        PRIMARY KEY (id), UNIQUE KEY idempotency_key (idempotency_key)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
      await sql.query(
        `INSERT INTO ${prefix}_jobs (id, type, queue, status, attempts, created_at, updated_at)
         VALUES ('old-1', 'resize_image', 'images', 'processing', 1, NOW(3), NOW(3))`,
      );

      // Two processes opening the old tables at once: both succeed, whoever adds the column.
      const [store, other] = await Promise.all([
        createMysqlStateStore(`${MYSQL_URL}?prefix=${prefix}`),
        createMysqlStateStore(`${MYSQL_URL}?prefix=${prefix}`),
      ]);
      try {
        const before = await store.getJob('old-1');
        expect(before).toMatchObject({ id: 'old-1', status: 'processing', attempts: 1 });
        expect(before!.progress).toBeUndefined();
        const progress = { percent: 50, message: 'done 1 of 2 variants', at: new Date().toISOString() };
        expect(await store.updateJob('old-1', { progress })).toBe(true);
        expect((await other.getJob('old-1'))!.progress).toEqual(progress);
        // ... and the payload column: a new job keeps its payload in the old table.
        const fresh = { ...before!, id: 'new-1', status: 'pending' as const, payload: { subject: 'hi' } };
        await store.createJob(fresh);
        expect((await other.getJob('new-1'))!.payload).toEqual({ subject: 'hi' });
      } finally {
        await Promise.all([store.close(), other.close()]);
      }
    } finally {
      await sql.query(`DROP TABLE IF EXISTS ${prefix}_jobs, ${prefix}_idempotency`);
      await sql.end();
    }
  });
});
