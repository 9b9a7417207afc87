// One published port's listener: bound while the port is wanted (it has backends), closed at once
// when not (connections are then refused, as on a port nobody serves); a port that cannot be bound
// (EADDRINUSE...) is tried again every `bindRetryMs` and reported through `onError`: the error on
// its first failure and whenever its code changes, null once bound (or no longer wanted).

import net from 'node:net';
import { errCode } from './sockets.js';
import type { Logger } from '@shoal/api';

export interface PortListenerOptions {
  port: number;
  host: string;
  bindRetryMs: number;
  keepAliveDelayMs: number;
  /** A client connection, paused (`pauseOnConnect`) until a backend is connected. */
  onConnection: (client: net.Socket) => void;
  onError: (port: number, err: Error | null) => void;
  /** The service's name, for logs (the table may rename it). */
  service: () => string;
  log: Logger;
}

export class PortListener {
  private server: net.Server | null = null;
  private bound = false;
  private binding: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The last bind error (while not bound), and the code last reported to onError. */
  private lastError: NodeJS.ErrnoException | undefined;
  private reportedCode: string | undefined;

  constructor(private readonly opts: PortListenerOptions) {}

  get listening(): boolean {
    return this.bound;
  }

  /** The code of the last bind error while the port is not bound. */
  get bindError(): string | undefined {
    return !this.bound && this.lastError ? errCode(this.lastError) : undefined;
  }

  /**
   * Binds (or keeps) the listener, or closes it. Resolves once the bind this starts has succeeded
   * or failed its first attempt; undefined when there is nothing to wait for.
   */
  want(on: boolean): Promise<void> | undefined {
    if (!on) {
      this.close(true);
      return undefined;
    }
    if (this.server) return this.binding;
    if (this.retryTimer) return undefined;
    return this.bind();
  }

  /** Stops accepting at once (open connections go on) and cancels bind retries; `report`: a reported error is cleared with null. */
  close(report: boolean): void {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    const s = this.server;
    this.server = null;
    this.binding = undefined;
    if (s) {
      const was = this.bound;
      this.bound = false;
      s.close();
      if (was) this.opts.log.info({ port: this.opts.port, service: this.opts.service() }, 'mesh: published port closed');
    }
    this.lastError = undefined;
    if (this.reportedCode !== undefined) {
      this.reportedCode = undefined;
      if (report) this.report(null);
    }
  }

  private bind(): Promise<void> {
    const { port, host, bindRetryMs, log } = this.opts;
    const server = net.createServer(
      {
        allowHalfOpen: true,
        pauseOnConnect: true,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: this.opts.keepAliveDelayMs,
      },
      this.opts.onConnection,
    );
    this.server = server;
    this.bound = false;
    const p = new Promise<void>((resolve) => {
      server.on('error', (err: NodeJS.ErrnoException) => {
        if (this.server !== server) {
          resolve();
          return;
        }
        if (this.bound) {
          // accept() errors (EMFILE...): the listener stays up.
          log.warn({ port, err }, 'mesh: listener error');
          return;
        }
        this.server = null;
        this.binding = undefined;
        this.lastError = err;
        log.warn({ port, host, code: err.code, retryMs: bindRetryMs }, 'mesh: cannot bind published port; retrying');
        if (this.reportedCode !== errCode(err)) {
          this.reportedCode = errCode(err);
          this.report(err);
        }
        // Only close() cancels it: while it runs, the port is still wanted.
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.want(true);
        }, bindRetryMs);
        this.retryTimer.unref();
        resolve();
      });
      server.listen({ host, port, exclusive: true }, () => {
        if (this.server !== server) {
          // Closed while the listen was under way.
          server.close();
          resolve();
          return;
        }
        this.bound = true;
        this.binding = undefined;
        this.lastError = undefined;
        this.reportedCode = undefined;
        log.info({ port, host, service: this.opts.service() }, 'mesh: published port listening');
        this.report(null);
        resolve();
      });
    });
    this.binding = p;
    return p;
  }

  private report(err: Error | null): void {
    try {
      this.opts.onError(this.opts.port, err);
    } catch (cbErr) {
      this.opts.log.error({ port: this.opts.port, err: cbErr }, 'mesh: onPortError callback threw');
    }
  }
}
