/**
 * The API stays strict for new producers while the email worker accepts the seed article's
 * classic payloads (docs/wire-format.md, "What the API demands, what the workers accept"): the
 * article's Q4M payload, which the worker delivers, is a 422 here, and nothing is published.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import { sendEmailPayloadAcceptedSchema } from '@polyqueue/jobs';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { RecordingBroker } from './helpers';

let root: string;
let broker: RecordingBroker;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'polyqueue-api-strict-'));
  broker = new RecordingBroker();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function app() {
  return createServer({
    broker,
    state: new MemoryStateStore(),
    storageRoot: root,
    limits: { jsonBytes: 100 * 1024, imageBytes: 1024 * 1024 },
  });
}

// The seed article's Q4M row's payload, and its Python producers' payload.
const q4mPayload = { to: 'user@example.com', subject: 'Welcome' };
const pythonPayload = { to: 'user@example.com' };

describe('what the API demands of new producers', () => {
  it.each([
    ['/v1/emails', q4mPayload, ['body']],
    ['/v1/emails', pythonPayload, ['subject']],
    ['/v1/jobs', { type: 'send_email', payload: q4mPayload }, ['payload.body']],
  ])(
    'POST %s refuses %j with a 422 naming %j, though the worker would deliver it',
    async (path, body, fields) => {
      const payload = 'payload' in body ? body.payload : body;
      expect(sendEmailPayloadAcceptedSchema.safeParse(payload).success).toBe(true);
      const res = await request(app()).post(path).send(body);
      expect(res.status).toBe(422);
      expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual([...fields].sort());
      expect(broker.published).toEqual([]);
    },
  );
});
