import { backoffDelay, errorMessage, type Logger, redact } from '@polyqueue/core';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';

export interface ConnectionOptions {
  url: string;
  reconnectMaxMs: number;
  connectTimeoutMs: number;
  heartbeatS: number;
  logger: Logger;
}

export type ConnectionListener = (connected: boolean, error?: Error) => void;

/**
 * One AMQP connection that heals itself. When the broker closes it (restart, network drop,
 * CONNECTION_FORCED) it reconnects with capped exponential backoff and full jitter, and tells
 * its listeners twice: once when lost, once when restored, so consumers re-declare their
 * topology and start again. Callers that need the connection meanwhile wait for it, at most
 * connectTimeoutMs, then fail with a message naming the broker; nothing waits forever.
 */
export class AmqpConnection {
  private model: ChannelModel | undefined;
  private closed = false;
  private reconnecting = false;
  private lastError: Error | undefined;
  /** Ends the current backoff pause early (on close). */
  private wake: (() => void) | undefined;
  private readonly listeners = new Set<ConnectionListener>();
  private waiters: Array<{ resolve: (model: ChannelModel) => void; reject: (error: Error) => void }> = [];

  constructor(private readonly options: ConnectionOptions) {}

  /** The URL with its password hidden, for messages. */
  get where(): string {
    return redact(this.options.url);
  }

  get connected(): boolean {
    return this.model !== undefined;
  }

  /** Connects once; fails with a clear message when the broker cannot be reached at start. */
  async start(): Promise<void> {
    try {
      this.attach(await this.open());
    } catch (error) {
      throw new Error(`cannot connect to RabbitMQ at ${this.where}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }

  /** A live connection; during an outage waits for the reconnection, at most connectTimeoutMs. */
  async get(): Promise<ChannelModel> {
    if (this.closed) throw new Error('the RabbitMQ broker was closed');
    if (this.model) return this.model;
    return new Promise<ChannelModel>((resolve, reject) => {
      const waiter = {
        resolve: (model: ChannelModel) => {
          clearTimeout(timer);
          resolve(model);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((other) => other !== waiter);
        const cause = this.lastError ? `: ${errorMessage(this.lastError)}` : '';
        reject(
          new Error(`RabbitMQ at ${this.where} unreachable for ${this.options.connectTimeoutMs} ms${cause}`),
        );
      }, this.options.connectTimeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** A confirm channel whose server-side errors are logged instead of crashing the process. */
  async confirmChannel(): Promise<ConfirmChannel> {
    const channel = await (await this.get()).createConfirmChannel();
    this.watch(channel);
    return channel;
  }

  /** A plain channel, for passive checks that may close it (404 on a missing queue). */
  async channel(): Promise<Channel> {
    const channel = await (await this.get()).createChannel();
    this.watch(channel);
    return channel;
  }

  /** Runs fn on a fresh channel and closes it after, whatever happened. */
  async withChannel<T>(fn: (channel: ConfirmChannel) => Promise<T>): Promise<T> {
    const channel = await this.confirmChannel();
    try {
      return await fn(channel);
    } finally {
      await closeQuietly(channel);
    }
  }

  /** Called on every loss and restoration; returns the unsubscribe function. */
  onChange(listener: ConnectionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(new Error('the RabbitMQ broker was closed'));
    const model = this.model;
    this.model = undefined;
    if (model) await model.close().catch(() => {});
  }

  private async open(): Promise<ChannelModel> {
    const url = new URL(this.options.url);
    // amqplib reads the heartbeat from the URL; an explicit ?heartbeat= in AMQP_URL wins.
    if (!url.searchParams.has('heartbeat'))
      url.searchParams.set('heartbeat', String(this.options.heartbeatS));
    return amqp.connect(url.toString(), { timeout: Math.min(this.options.connectTimeoutMs, 10_000) });
  }

  private attach(model: ChannelModel): void {
    this.model = model;
    this.lastError = undefined;
    model.on('error', (error: Error) => {
      this.lastError = error;
      this.options.logger.warn({ err: error, broker: this.where }, 'RabbitMQ connection error');
    });
    model.on('blocked', (reason: string) => {
      this.options.logger.warn(
        { reason, broker: this.where },
        'RabbitMQ blocked publishing (resource alarm)',
      );
    });
    model.on('close', () => {
      if (this.model !== model) return;
      this.model = undefined;
      if (this.closed) return;
      const error = this.lastError ?? new Error(`connection to RabbitMQ at ${this.where} closed`);
      this.options.logger.warn({ err: error, broker: this.where }, 'RabbitMQ connection lost; reconnecting');
      this.emit(false, error);
      void this.reconnect();
    });
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.resolve(model);
  }

  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let attempt = 0; !this.closed; attempt++) {
        // core's full jitter from 100 ms, with a floor so a crowd of workers does not spin on a
        // refusing port.
        await this.pause(
          Math.max(50, backoffDelay(attempt + 1, { baseMs: 100, maxMs: this.options.reconnectMaxMs })),
        );
        if (this.closed) return;
        try {
          const model = await this.open();
          if (this.closed) {
            await model.close().catch(() => {});
            return;
          }
          this.attach(model);
          this.options.logger.info(
            { broker: this.where, attempts: attempt + 1 },
            'RabbitMQ connection restored',
          );
          this.emit(true);
          return;
        } catch (error) {
          this.lastError = error as Error;
          this.options.logger.warn(
            { err: error, broker: this.where, attempt: attempt + 1 },
            'RabbitMQ reconnect failed',
          );
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /** A referenced timer on purpose: a worker waiting for the broker must keep the process alive. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private emit(connected: boolean, error?: Error): void {
    for (const listener of this.listeners) {
      try {
        listener(connected, error);
      } catch (listenerError) {
        this.options.logger.error({ err: listenerError }, 'connection listener failed');
      }
    }
  }

  private watch(channel: Channel): void {
    channel.on('error', (error: Error) => {
      this.options.logger.warn({ err: error, broker: this.where }, 'RabbitMQ channel closed by the broker');
    });
  }
}

export async function closeQuietly(channel: Channel): Promise<void> {
  try {
    await channel.close();
  } catch {
    // Already closed by the broker or with its connection.
  }
}
