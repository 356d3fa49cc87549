import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import request from 'supertest';
import { beforeEach, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { RecordingBroker } from './helpers';

// The JSON bodies of every JSON route (json-body.ts), through POST /v1/emails: a body that
// parses is published as the email's payload, so what reached the route is what was parsed.

let broker: RecordingBroker;
beforeEach(() => {
  broker = new RecordingBroker();
});

const LIMIT = 1024;
const app = () =>
  createServer({
    broker,
    state: new MemoryStateStore(),
    storageRoot: '/nonexistent',
    limits: { jsonBytes: LIMIT },
  });
const email = { to: 'ada@example.com', subject: 'Hello', body: 'Hi Ada, ünïcödé ✓' };

async function post(contentType: string | undefined, body: string) {
  const req = request(app()).post('/v1/emails');
  if (contentType !== undefined) req.set('Content-Type', contentType);
  return req.send(body);
}

/**
 * POSTs the bytes as they are (supertest would JSON-encode a Buffer) to a listening API, in
 * `pieces` writes; chunked when `headers` give no Content-Length.
 */
async function postBytes(
  body: Buffer,
  headers: Record<string, string>,
  pieces = 1,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const server = createHttpServer(app()).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: '/v1/emails', method: 'POST', headers },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      const size = Math.ceil(body.length / pieces);
      for (let at = 0; at < body.length; at += size) req.write(body.subarray(at, at + size));
      req.end();
    });
  } finally {
    server.close();
  }
}

function expectProblem(res: request.Response, status: number, kind: string) {
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({ type: `urn:polyqueue:problem:${kind}`, status });
}

describe('JSON request bodies', () => {
  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'Application/JSON; Charset="UTF-8"',
    'application/vnd.polyqueue+json',
  ])('parses a UTF-8 body sent as %s', async (type) => {
    const res = await post(type, JSON.stringify(email));
    expect(res.status).toBe(202);
    expect(broker.published[0]!.envelope.payload).toEqual(email);
  });

  it('parses a body that starts with a byte order mark', async () => {
    const res = await post('application/json', `\ufeff${JSON.stringify(email)}`);
    expect(res.status).toBe(202);
    expect(broker.published[0]!.envelope.payload).toEqual(email);
  });

  it('decodes a gzip-compressed body and a UTF-16 one as body-parser does', async () => {
    const gzipped = await postBytes(gzipSync(JSON.stringify(email)), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(gzipped.status).toBe(202);
    const utf16 = await postBytes(Buffer.from(JSON.stringify(email), 'utf16le'), {
      'content-type': 'application/json; charset=utf-16le',
    });
    expect(utf16.status).toBe(202);
    expect(broker.published.map((p) => p.envelope.payload)).toEqual([email, email]);
  });

  it('refuses a charset JSON cannot be in, another type and a missing body with 415', async () => {
    expectProblem(
      await post('application/json; charset=latin1', JSON.stringify(email)),
      415,
      'unsupported-media-type',
    );
    expectProblem(await post('text/plain', JSON.stringify(email)), 415, 'unsupported-media-type');
    expectProblem(await request(app()).post('/v1/emails'), 415, 'unsupported-media-type');
    expect(broker.published).toHaveLength(0);
  });

  it('takes an empty body as {} (the route then names the missing fields) and malformed JSON as 400', async () => {
    expectProblem(await post('application/json', ''), 422, 'validation-error');
    const bad = await post('application/json', '{"to": ');
    expectProblem(bad, 400, 'malformed-json');
    expect(bad.body.detail).toMatch(/^the request body is not valid JSON: .*JSON/);
  });

  it('answers 413 over the limit, declared or streamed, after reading the rest of the body', async () => {
    const big = JSON.stringify({ ...email, body: 'x'.repeat(LIMIT) });
    expectProblem(await post('application/json', big), 413, 'payload-too-large');

    // Chunked, no Content-Length: the limit is found while reading; the client still gets the answer.
    const streamed = await postBytes(Buffer.from(big), { 'content-type': 'application/json' }, 8);
    expect(streamed.status).toBe(413);
    expect(streamed.json).toMatchObject({ type: 'urn:polyqueue:problem:payload-too-large' });
    expect(broker.published).toHaveLength(0);
  });
});
