import { SQSClient } from '@aws-sdk/client-sqs';
import { intVariable, urlVariable } from '@polyqueue/core';
import { z } from 'zod';

const booleanVariable = (defaultValue: boolean) =>
  z
    .string()
    .default(defaultValue ? 'true' : 'false')
    .transform((value) => value.trim().toLowerCase())
    .pipe(z.enum(['true', 'false', '1', '0'], { message: 'must be true or false' }))
    .transform((value) => value === 'true' || value === '1');

/**
 * The environment of BROKER=sqs. Credentials follow the AWS SDK's default chain (environment,
 * shared config file, SSO, instance or task role) unless given here; against a local server
 * (SQS_ENDPOINT set, no keys) dummy keys are used, since ElasticMQ ignores signatures.
 */
export const sqsEnvSchema = z.object({
  /** Unset on real AWS (the SDK derives the regional endpoint); http://127.0.0.1:9324 for ElasticMQ. */
  SQS_ENDPOINT: urlVariable(['http:', 'https:']).optional(),
  /** Required in practice on real AWS (it selects the region); any value works locally. */
  AWS_REGION: z.string().trim().min(1).default('us-east-1'),
  AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  AWS_SESSION_TOKEN: z.string().min(1).optional(),
  /** FIFO queues (`polyqueue-Q.fifo`): order per key, deduplication by idempotency key. */
  SQS_FIFO: booleanVariable(false),
  /** The lease: how long a received message stays hidden before another consumer may take it. */
  SQS_VISIBILITY_TIMEOUT_S: intVariable(30, 1, 43_200),
  /** Long-poll wait per ReceiveMessage (0 = short polling; 20 is the SQS maximum). */
  SQS_WAIT_TIME_S: intVariable(20, 0, 20),
  /** RedrivePolicy maxReceiveCount: SQS moves a message received this often to Q-dead by itself. */
  SQS_MAX_RECEIVE_COUNT: intVariable(10, 1, 1000),
  POLYQUEUE_PREFIX: z
    .string()
    // 16 leaves room in SQS's 80-character queue names for topic and group names.
    .regex(/^[A-Za-z0-9_-]{1,16}$/, 'must be 1-16 letters, digits, "-" or "_" (SQS queue name characters)')
    .default('polyqueue'),
});

export type SqsConfig = z.infer<typeof sqsEnvSchema>;

export function createSqsClient(config: SqsConfig): SQSClient {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = config;
  let credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  if (accessKeyId && secretAccessKey) {
    credentials = {
      accessKeyId,
      secretAccessKey,
      ...(config.AWS_SESSION_TOKEN ? { sessionToken: config.AWS_SESSION_TOKEN } : {}),
    };
  } else if (config.SQS_ENDPOINT) {
    // A local SQS-compatible server: signatures are not checked, but the SDK insists on keys.
    credentials = { accessKeyId: 'x', secretAccessKey: 'x' };
  }
  return new SQSClient({
    region: config.AWS_REGION,
    ...(config.SQS_ENDPOINT ? { endpoint: config.SQS_ENDPOINT } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: 3,
    // A stalled connection must fail (and be retried by the consumer loop), never hang a worker:
    // the longest request is a 20 s long poll.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: (config.SQS_WAIT_TIME_S + 15) * 1000 },
  });
}
