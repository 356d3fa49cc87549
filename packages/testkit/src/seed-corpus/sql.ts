/** The article's SQL producers (第1部 Q4M): a plain INSERT into the job table, on mysql and sqlite. */
import { type SeedBroker, type SeedExample, USER } from './types';

const TABLE_QUEUES: readonly SeedBroker[] = ['mysql', 'sqlite'];

/** 第1部 Q4M, printed and derived. */
export const SQL_EXAMPLES: readonly SeedExample[] = [
  {
    id: 'q4m-insert',
    where: '第1部 Q4M / メッセージの投入(Producer)',
    article: `INSERT INTO job_queue (job_type, payload)\nVALUES ('send_email', '{"to":"user@example.com","subject":"Welcome"}');`,
    articleQueue: 'job_queue',
    brokers: TABLE_QUEUES,
    write: {
      kind: 'sql',
      sql: `INSERT INTO job_queue (job_type, payload)\nVALUES ('send_email', '{"to":"user@example.com","subject":"Welcome"}');`,
    },
    expect: { delivered: { to: USER, subject: 'Welcome', body: '' } },
    articleWorker: "Q4MWorker::sendEmail: mail($payload['to'], $payload['subject'], $payload['body'] ?? '')",
  },
  {
    id: 'q4m-insert-unknown-type',
    where: '第1部 Q4M / メッセージの投入(Producer)',
    article: `INSERT INTO job_queue (job_type, payload)\nVALUES ('send_sms', '{"to":"user@example.com"}');`,
    articleQueue: 'job_queue',
    brokers: TABLE_QUEUES,
    write: {
      kind: 'sql',
      sql: `INSERT INTO job_queue (job_type, payload)\nVALUES ('send_sms', '{"to":"user@example.com"}');`,
    },
    expect: { deadLetter: /^unknown job type "send_sms" on queue email/ },
    articleWorker: 'Q4MWorker::handleJob throws "Unknown job type: send_sms"',
    derived: "job_type 'send_sms' instead of 'send_email'",
  },
];

/** The article's SQL with its table name replaced; the article's values stay as printed. */
export function seedSql(sql: string, table: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(table)) throw new Error(`seed corpus: unsafe table name ${table}`);
  return sql.replace(/\bINSERT INTO job_queue\b/, `INSERT INTO ${table}`);
}

export async function insertMysql(url: string, sql: string): Promise<void> {
  const mysql = (await import('mysql2/promise')).default;
  const connection = await mysql.createConnection({ uri: url });
  try {
    await connection.query(sql); // autocommit, as PDO's query() is
  } finally {
    await connection.end();
  }
}

export async function insertSqlite(path: string, sql: string): Promise<void> {
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(path);
  try {
    db.pragma('busy_timeout = 10000');
    db.exec(sql);
  } finally {
    db.close();
  }
}

/** Drops the tables named `<prefix>_*`. */
export async function removeMysqlTables(url: string, prefix: string): Promise<void> {
  const mysql = (await import('mysql2/promise')).default;
  const connection = await mysql.createConnection({ uri: url });
  try {
    const [rows] = await connection.query('SHOW TABLES LIKE ?', [`${prefix}\\_%`]);
    for (const row of rows as Record<string, string>[])
      await connection.query(`DROP TABLE IF EXISTS \`${Object.values(row)[0]}\``);
  } finally {
    await connection.end();
  }
}
