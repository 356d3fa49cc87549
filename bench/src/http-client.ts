/**
 * The load generators' HTTP client: HTTP/1.1 written and read straight on keep-alive TCP
 * sockets, one request in flight per socket. The load runs on the same 2 cores as the servers
 * it measures, so every microsecond the client spends is taken from them, and a client slower
 * than the server caps the server's figure: with `fetch` (undici) the e2e scenario accepted 0.6x
 * the POSTs per second it did with node:http, and with node:http (http.request, 0.3 ms of CPU a
 * request here) the bare server topped out at 7,229 requests/s where a C client (wrk) drove it to
 * 14,747, which made the API look twice as close to it as it is (docs/benchmarks.md). This one
 * formats each request as one string and reads only the status line, Content-Length and body.
 */
import { connect, type Socket } from 'node:net';

export interface JsonPoster {
  /** POSTs a JSON body; resolves with the status and the answer's text. */
  post(path: string, body: string): Promise<{ status: number; text: string }>;
  /** Closes the sockets. */
  close(): void;
}

interface Answer {
  status: number;
  text: string;
}

/** One keep-alive connection: requests go one at a time, each answered before the next is sent. */
class Connection {
  readonly socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #pending: { resolve: (a: Answer) => void; reject: (e: Error) => void } | undefined;
  closed = false;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    const fail = (error: Error) => {
      this.closed = true;
      this.#pending?.reject(error);
      this.#pending = undefined;
    };
    this.socket.on('error', fail);
    this.socket.on('close', () => fail(new Error('the server closed the connection')));
  }

  send(request: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.socket.write(request);
    });
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const headEnd = this.#buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = this.#buffer.toString('latin1', 0, headEnd);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!length) {
      this.#pending?.reject(new Error(`an answer without Content-Length: ${head.split('\r\n')[0]}`));
      this.socket.destroy();
      return;
    }
    const end = headEnd + 4 + Number(length[1]);
    if (this.#buffer.length < end) return;
    const answer = {
      status: Number(head.slice(9, 12)),
      text: this.#buffer.toString('utf8', headEnd + 4, end),
    };
    this.#buffer = this.#buffer.subarray(end);
    if (/\r\nconnection:\s*close/i.test(head)) {
      this.closed = true;
      this.socket.end();
    }
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.resolve(answer);
  }
}

export function keepAlivePoster(port: number, sockets: number): JsonPoster {
  const all: Connection[] = [];
  const idle: Connection[] = [];
  const waiters: ((c: Connection) => void)[] = [];
  const acquire = (): Connection | Promise<Connection> => {
    while (idle.length > 0) {
      const c = idle.pop()!;
      if (!c.closed) return c;
    }
    const open = all.filter((c) => !c.closed);
    if (open.length < sockets) {
      const c = new Connection(port);
      all.splice(0, all.length, ...open, c);
      return c;
    }
    return new Promise((resolve) => waiters.push(resolve));
  };
  const release = (c: Connection) => {
    if (c.closed) {
      // A waiter gets a fresh connection in place of the one the server closed.
      const waiter = waiters.shift();
      if (waiter) Promise.resolve(acquire()).then(waiter);
      return;
    }
    const waiter = waiters.shift();
    if (waiter) waiter(c);
    else idle.push(c);
  };
  const head = (path: string, length: number) =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
  return {
    async post(path, body) {
      const c = await acquire();
      try {
        return await c.send(head(path, Buffer.byteLength(body)) + body);
      } finally {
        release(c);
      }
    },
    close() {
      for (const c of all) c.socket.destroy();
    },
  };
}
