// A real Docker engine behind a unix-socket HTTP proxy whose `/_ping` the test can make fail or
// stall: a node pointed at it (--docker-host unix://PATH) sees an engine that restarts or hangs,
// while everything else (containers, events, logs) goes to the machine's engine as usual.
import http from 'node:http';
import { rmSync } from 'node:fs';

export type PingMode = 'ok' | 'fail' | 'hang';

export class DockerPingProxy {
  private readonly server: http.Server;
  /** How the next pings are answered: a queue of one-off modes, then `mode`. */
  private queue: PingMode[] = [];
  mode: PingMode = 'ok';
  /** Stalled pings wait until this is released (or the client gives up). */
  private stalled: (() => void)[] = [];
  pings = { ok: 0, failed: 0, stalled: 0 };

  constructor(
    readonly path: string,
    private readonly engine = '/var/run/docker.sock',
  ) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    // Event streams and log follows stay open for as long as the node wants.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 0;
  }

  async listen(): Promise<void> {
    rmSync(this.path, { force: true });
    await new Promise<void>((r) => this.server.listen(this.path, r));
  }

  /** The next pings answered so, one each, before `mode` applies again. */
  next(...modes: PingMode[]): void {
    this.queue.push(...modes);
  }

  /** Lets every stalled ping through to the engine. */
  release(): void {
    for (const f of this.stalled.splice(0)) f();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    rmSync(this.path, { force: true });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (/^(\/v[\d.]+)?\/_ping(\?|$)/.test(req.url ?? '')) {
      const mode = this.queue.shift() ?? this.mode;
      if (mode === 'fail') {
        this.pings.failed++;
        res.writeHead(500, { 'content-type': 'text/plain' }).end('engine is restarting');
        return;
      }
      if (mode === 'hang') {
        this.pings.stalled++;
        this.stalled.push(() => this.forward(req, res));
        return;
      }
      this.pings.ok++;
    }
    this.forward(req, res);
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (res.destroyed) return;
    const up = http.request({ socketPath: this.engine, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  }
}
