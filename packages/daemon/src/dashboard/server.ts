// The web dashboard a manager serves on --ui-addr: HTTPS with the manager's own certificate, one
// page (its script and style bundled at build time into dist/web: nothing is fetched from
// elsewhere), and a small read-only API over the manager's local store: /api/state (JSON) and
// /api/feed (Server-Sent Events, feed.ts), and a few buttons (actions.ts: scale, rollback, a
// node's availability) that go through the control API. A caller is let in by an admin
// certificate of the cluster, or by the session a one-time token from `shoal ui` was exchanged
// for (logins.ts).
//
// The daemon's manager may come and go (a worker promoted, a manager demoted): the dashboard
// follows whichever runs, and says so when none does.

import { readFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { ShoalError } from '@shoal/api';
import type { Manager, UiLogin } from '@shoal/manager';
import type { TlsMaterial } from '@shoal/pki';
import type { PinoLogger } from '@shoal/raft';
import { Feed, type FeedClient } from './feed.js';
import { Logins } from './logins.js';
import { httpStatusOf, isAction, runAction } from './actions.js';

export const SESSION_COOKIE = 'shoal_session';
/** How often the dashboard looks for a change of the daemon's manager. */
const FOLLOW_MS = 1_000;
/** SSE comments that keep idle connections (and proxies) open. */
const KEEPALIVE_MS = 15_000;

const ASSETS = new URL('../../web/', import.meta.url);
const ASSET_TYPES: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal</title>
<link rel="stylesheet" href="/assets/app.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body><main id="app"><p class="boot">Loading the dashboard…</p></main></body>
</html>
`;

export interface DashboardOptions {
  /** HOST:PORT to listen on. */
  addr: string;
  /** The daemon's manager now, if it runs one. */
  manager: () => Manager | undefined;
  log: PinoLogger;
}

export class Dashboard {
  private readonly logins = new Logins();
  private current: Manager | undefined;
  private feed: Feed | undefined;
  private readonly follow: NodeJS.Timeout;
  private readonly assets = new Map<string, Buffer>();
  private readonly onRenewed = () => this.current && this.server.setSecureContext(secureContext(this.current.opts.identity.material));

  private constructor(
    private readonly server: Server,
    private readonly opts: DashboardOptions,
    readonly port: number,
  ) {
    for (const name of Object.keys(ASSET_TYPES)) {
      try {
        this.assets.set(name, readFileSync(new URL(name, ASSETS)));
      } catch {
        // A build without the bundle step (tsc alone): the page says so.
      }
    }
    server.on('request', (req, res) => this.handle(req, res));
    this.follow = setInterval(() => this.sync(), FOLLOW_MS);
    this.follow.unref();
    this.sync();
  }

  /** Listens on `addr` (before any manager is there: a taken port stops the daemon's start). */
  static async open(opts: DashboardOptions): Promise<Dashboard> {
    const server = createServer({ requestCert: true, rejectUnauthorized: false });
    const { host, port } = splitAddr(opts.addr);
    const bound = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as { port: number }).port);
      });
    }).catch((err: Error) => {
      throw new ShoalError('INVALID_ARGUMENT', `cannot listen on --ui-addr ${opts.addr}: ${err.message}`);
    });
    return new Dashboard(server, opts, bound);
  }

  /** The address to give a browser: the listening host, or the manager's own for a wildcard. */
  url(): string {
    let host = splitAddr(this.opts.addr).host;
    if (host === '0.0.0.0' || host === '::' || host === '') host = splitAddr(this.current?.opts.advertiseAddr ?? '127.0.0.1:0').host;
    return `https://${host.includes(':') ? `[${host}]` : host}:${this.port}/`;
  }

  /** A one-time login (CreateUiLogin): the URL carries the token in its fragment. */
  newLogin(): UiLogin {
    const { token, expiresAtMs } = this.logins.issue();
    return { url: `${this.url()}#token=${token}`, token, expiresAtMs };
  }

  async stop(): Promise<void> {
    clearInterval(this.follow);
    this.switchTo(undefined);
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Follows the daemon's manager: its certificate, its store, its login call (also checked every second). */
  sync(): void {
    const m = this.opts.manager();
    if (m !== this.current) this.switchTo(m);
  }

  private switchTo(m: Manager | undefined): void {
    const old = this.current;
    if (old) {
      old.opts.identity.off('renewed', this.onRenewed);
      if (old.uiLogin) old.uiLogin = undefined;
    }
    this.feed?.stop();
    this.feed = undefined;
    this.current = m;
    if (!m) return;
    this.server.setSecureContext(secureContext(m.opts.identity.material));
    m.opts.identity.on('renewed', this.onRenewed);
    m.uiLogin = () => this.newLogin();
    this.feed = new Feed(m);
    this.opts.log.info({ url: this.url() }, 'serving the dashboard');
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    const path = (req.url ?? '/').split('?')[0]!;
    try {
      if (req.method === 'GET' && (path === '/' || path === '/index.html')) return text(res, 200, 'text/html; charset=utf-8', PAGE);
      if (req.method === 'GET' && path.startsWith('/assets/')) return this.asset(res, path.slice('/assets/'.length));
      if (req.method === 'POST' && path === '/api/login') return this.settle(res, path, this.login(req, res));
      if (req.method === 'POST' && path === '/api/logout') {
        this.logins.end(cookie(req, SESSION_COOKIE));
        res.setHeader('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`);
        return text(res, 204, 'text/plain', '');
      }
      if (!path.startsWith('/api/')) return json(res, 404, { error: 'NOT_FOUND', message: `no page ${path}` });
      const who = this.caller(req);
      if (!who.ok) return json(res, 401, { error: 'UNAUTHENTICATED', message: who.why });
      const feed = this.feed;
      if (!feed) return json(res, 503, { error: 'UNAVAILABLE', message: 'this node runs no manager now (it was demoted, or is still starting): open the dashboard of another manager' });
      if (req.method === 'GET' && path === '/api/session') return json(res, 200, { ok: true });
      if (req.method === 'GET' && path === '/api/state') return json(res, 200, feed.snapshot());
      if (req.method === 'GET' && path === '/api/feed') return this.stream(req, res, feed);
      if (req.method === 'POST' && path.startsWith('/api/actions/') && isAction(path.slice('/api/actions/'.length))) {
        return this.settle(res, path, this.action(req, res, path.slice('/api/actions/'.length)));
      }
      return json(res, 404, { error: 'NOT_FOUND', message: `no call ${req.method} ${path}` });
    } catch (err) {
      this.failed(res, path, err);
    }
  }

  private settle(res: ServerResponse, path: string, p: Promise<void>): void {
    p.catch((err: unknown) => this.failed(res, path, err));
  }

  private failed(res: ServerResponse, path: string, err: unknown): void {
    this.opts.log.warn({ err: (err as Error).message, path }, 'dashboard request failed');
    if (!res.headersSent) json(res, 500, { error: 'INTERNAL', message: (err as Error).message });
    else res.destroy();
  }

  private asset(res: ServerResponse, name: string): void {
    const body = this.assets.get(name);
    if (!body) {
      const missing = name in ASSET_TYPES;
      return text(res, 404, 'text/plain; charset=utf-8', missing ? 'the dashboard was not bundled: run npm run build (scripts/bundle-ui.mjs)' : 'not found');
    }
    res.setHeader('cache-control', 'no-cache');
    text(res, 200, ASSET_TYPES[name]!, body);
  }

  /** An admin certificate of this cluster, or a live session. */
  private caller(req: IncomingMessage): { ok: true } | { ok: false; why: string } {
    if (this.logins.check(cookie(req, SESSION_COOKIE))) return { ok: true };
    const socket = req.socket as TLSSocket;
    const m = this.current;
    if (m && socket.authorized) {
      const cert = socket.getPeerCertificate();
      try {
        const id = m.authz.identify({ getAuthContext: () => ({ sslPeerCertificate: cert }) });
        if (id.role === 'admin') return { ok: true };
        return { ok: false, why: `the dashboard needs an admin certificate or a login from \`shoal ui\`, not a ${id.role} certificate` };
      } catch (err) {
        return { ok: false, why: (err as Error).message };
      }
    }
    return { ok: false, why: 'log in with a link from `shoal ui` (or present an admin certificate of this cluster)' };
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    if (!body) return json(res, 400, { error: 'INVALID_ARGUMENT', message: 'the login body is JSON: {"token": "..."}' });
    const session = this.logins.redeem(String(body['token'] ?? ''));
    if (!session) return json(res, 401, { error: 'UNAUTHENTICATED', message: 'this login link was used already or has expired: get a new one with `shoal ui`' });
    res.setHeader('set-cookie', `${SESSION_COOKIE}=${session}; Path=/; HttpOnly; Secure; SameSite=Strict`);
    json(res, 200, { ok: true });
  }

  /**
   * A button: one control API call (actions.ts). Only from the dashboard's own page: a JSON body
   * (another site's form cannot send one without asking first) and, when the browser names it,
   * this server as the origin.
   */
  private async action(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const origin = req.headers.origin;
    if (origin && origin !== `https://${req.headers.host}`) return json(res, 403, { error: 'PERMISSION_DENIED', message: `actions come from the dashboard's own page, not ${origin}` });
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return json(res, 415, { error: 'INVALID_ARGUMENT', message: 'an action is a JSON request' });
    const body = await readJson(req);
    const m = this.current;
    if (!body || !m) return json(res, body ? 503 : 400, { error: body ? 'UNAVAILABLE' : 'INVALID_ARGUMENT', message: body ? 'this node runs no manager now' : 'the body is a JSON object' });
    try {
      await runAction(m.socketPath, name, body);
      this.opts.log.info({ action: name, ...body, by: this.who(req) }, 'dashboard action');
      json(res, 200, { ok: true });
    } catch (err) {
      const e = ShoalError.from(err);
      json(res, httpStatusOf(e), { error: e.code, message: e.message });
    }
  }

  /** For the log: the admin certificate's name, or "a shoal ui session". */
  private who(req: IncomingMessage): string {
    const socket = req.socket as TLSSocket;
    if (socket.authorized) {
      const cn = socket.getPeerCertificate()?.subject?.CN;
      if (cn) return String(cn);
    }
    return 'a shoal ui session';
  }

  private stream(req: IncomingMessage, res: ServerResponse, feed: Feed): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const client: FeedClient = {
      send: (event, data) => {
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        return res.writableLength;
      },
      close: () => res.end(),
    };
    req.on('close', () => {
      clearInterval(keepalive);
      feed.remove(client);
    });
    feed.add(client);
  }
}

/** A small JSON object from a request's body; undefined if it is not one (or too large). */
function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
      if (body.length > 4096) {
        resolve(undefined);
        req.destroy();
      }
    });
    req.on('end', () => {
      try {
        const v = JSON.parse(body) as unknown;
        resolve(v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
      } catch {
        resolve(undefined);
      }
    });
    req.on('error', () => resolve(undefined));
  });
}

function secureContext(m: TlsMaterial) {
  // The chain with its root, as the gRPC port sends it; clients' certificates checked against the root.
  return { ca: [m.caPem], cert: `${m.certPem.trim()}\n${m.caPem.trim()}\n`, key: m.keyPem, requestCert: true, rejectUnauthorized: false };
}

function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(addr.slice(i + 1)) };
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function text(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.setHeader('cache-control', 'no-store');
  text(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}
