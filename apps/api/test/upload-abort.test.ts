import { once } from 'node:events';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStateStore } from '@polyqueue/app-runtime';
import { eventually } from '@polyqueue/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from '../src/server';
import { RecordingBroker } from './helpers';

let root: string;
let server: Server;
let broker: RecordingBroker;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'polyqueue-api-abort-'));
  broker = new RecordingBroker();
  const app = createServer({ broker, state: new MemoryStateStore(), storageRoot: root });
  server = createHttpServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});

/** Files in the upload temp dir (absent until the first upload creates it). */
async function tempFiles(): Promise<string[]> {
  return readdir(join(root, 'tmp')).catch(() => []);
}

/** This process's open descriptors that point into the storage root. */
async function descriptorsUnderRoot(): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target.startsWith(root));
}

/**
 * Connects and sends the head of a POST /v1/images announcing far more bytes than `body`, then
 * `body`: the server waits for the rest of the file.
 */
async function partialUpload(contentType: string, body: Buffer): Promise<Socket> {
  const { port } = server.address() as AddressInfo;
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => {});
  const head = [
    'POST /v1/images HTTP/1.1',
    `Host: 127.0.0.1:${port}`,
    `Content-Type: ${contentType}`,
    'Content-Length: 1000000',
    '',
    '',
  ].join('\r\n');
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  return socket;
}

/** The client goes away: the temp file is removed and its descriptor closed. */
async function abortAndExpectCleanup(socket: Socket): Promise<void> {
  socket.destroy();
  await eventually(tempFiles, (files) => files.length === 0, 'the temp file to be removed', 5_000);
  await eventually(descriptorsUnderRoot, (fds) => fds.length === 0, 'the descriptor to be closed', 5_000);
}

describe('an aborted multipart upload', () => {
  it('removes its temp file and closes its descriptor when the client goes away mid-file', async () => {
    const boundary = 'polyqueueabort';
    const part = [
      `--${boundary}`,
      'Content-Disposition: form-data; name="file"; filename="a.png"',
      'Content-Type: image/png',
      '',
      '',
    ].join('\r\n');
    const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // Content-Length is far more than what is sent: the server waits for the rest of the file.
    const socket = await partialUpload(
      `multipart/form-data; boundary=${boundary}`,
      Buffer.concat([Buffer.from(part, 'latin1'), pngSignature, Buffer.alloc(64 * 1024, 7)]),
    );

    // The file part is being written to disk: a temp file and its open descriptor exist.
    await eventually(tempFiles, (files) => files.length === 1, 'the temp file of the upload', 5_000);
    await eventually(descriptorsUnderRoot, (fds) => fds.length === 1, 'the temp file descriptor', 5_000);

    await abortAndExpectCleanup(socket);
    expect(broker.published).toHaveLength(0);
  }, 20_000);

  it('of a raw image body cleans up the same way', async () => {
    const socket = await partialUpload('image/png', Buffer.alloc(64 * 1024, 7));
    await eventually(tempFiles, (files) => files.length === 1, 'the temp file of the upload', 5_000);
    await abortAndExpectCleanup(socket);
  }, 20_000);
});
