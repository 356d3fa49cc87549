/**
 * Where the machine's servers are (scripts/services/README.md), each overridable by the variable
 * of the same name: what a test that writes to several brokers puts in their environments.
 */
export const LOCAL_SERVERS = {
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  AMQP_URL: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
  SQS_ENDPOINT: process.env.SQS_ENDPOINT ?? 'http://127.0.0.1:9324',
  AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
  MYSQL_URL: process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
} as const;
