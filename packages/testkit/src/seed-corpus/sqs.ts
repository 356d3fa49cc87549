/** The article's SQS producer (第5部): boto3's send_message with a JobType attribute. */
import { type SeedExample, type SeedTarget, USER } from './types';

// Python's json.dumps writes ", " and ": " between items: these bodies are its output, byte for byte.

/** 第5部 Amazon SQS, printed and derived. */
export const SQS_EXAMPLES: readonly SeedExample[] = [
  {
    id: 'boto3-send-message',
    where: '第5部 Amazon SQS / Pythonでの実装(boto3)',
    article: `send_message("send_email", {"to": "user@example.com"})  # sqs.send_message(QueueUrl=.../job-queue, MessageBody=json.dumps(...), MessageAttributes={'JobType': ...})`,
    articleQueue: 'job-queue',
    brokers: ['sqs'],
    write: {
      kind: 'sqs',
      body: '{"type": "send_email", "payload": {"to": "user@example.com"}}',
      attributes: { JobType: { DataType: 'String', StringValue: 'send_email' } },
    },
    expect: { delivered: { to: USER, subject: '', body: '' } },
    articleWorker: "handle_job prints job['payload']['to']",
  },
  {
    id: 'boto3-send-message-without-to',
    where: '第5部 Amazon SQS / Pythonでの実装(boto3)',
    article: `send_message("send_email", {"subject": "Hello"})`,
    articleQueue: 'job-queue',
    brokers: ['sqs'],
    write: {
      kind: 'sqs',
      body: '{"type": "send_email", "payload": {"subject": "Hello"}}',
      attributes: { JobType: { DataType: 'String', StringValue: 'send_email' } },
    },
    expect: { deadLetter: /^invalid payload: to: / },
    articleWorker: "handle_job: KeyError 'to' (back after the visibility timeout, forever)",
    derived: 'the payload has no "to"',
  },
];

async function sqs(env: SeedTarget['env']) {
  const sdk = await import('@aws-sdk/client-sqs');
  const client = new sdk.SQSClient({
    region: env.AWS_REGION ?? 'us-east-1',
    ...(env.SQS_ENDPOINT ? { endpoint: env.SQS_ENDPOINT } : {}),
    credentials: {
      accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'x',
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'x',
    },
  });
  return { sdk, client };
}

export async function sendSqs(
  env: SeedTarget['env'],
  queueName: string,
  body: string,
  attributes: Record<string, { DataType: 'String'; StringValue: string }>,
): Promise<void> {
  const { sdk, client } = await sqs(env);
  try {
    // The article hard-codes the queue URL; looking it up gives the same URL here.
    const { QueueUrl } = await client.send(new sdk.GetQueueUrlCommand({ QueueName: queueName }));
    await client.send(
      new sdk.SendMessageCommand({ QueueUrl, MessageBody: body, MessageAttributes: attributes }),
    );
  } finally {
    client.destroy();
  }
}

/** Deletes the queues named `<prefix>-*`. */
export async function removeSqsQueues(env: SeedTarget['env'], prefix: string): Promise<void> {
  const { sdk, client } = await sqs(env);
  try {
    const { QueueUrls = [] } = await client.send(
      new sdk.ListQueuesCommand({ QueueNamePrefix: `${prefix}-` }),
    );
    await Promise.all(QueueUrls.map((url) => client.send(new sdk.DeleteQueueCommand({ QueueUrl: url }))));
  } finally {
    client.destroy();
  }
}
