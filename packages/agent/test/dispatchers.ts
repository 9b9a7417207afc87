// Managers for the session's suites: a dispatcher that records its calls (gRPC on loopback, plain or
// with the cluster's TLS), and a TCP relay in front of one that can hold a connection in its
// handshake (a leader busy with a thousand nodes' handshakes, as the agent sees it).

import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ShoalError, getServiceDefinition, type ChannelSecurity } from '@shoal/api';
import { NodeIdentity, createRootCA, issueWithNewKey, managerChannel } from '@shoal/pki';

export interface Call {
  method: string;
  req: Record<string, unknown>;
  /** performance.now() when it arrived. */
  at: number;
  /** The caller's address (its connection's). */
  peer: string;
}

/**
 * A dispatcher that records its calls; `leaderAddr` set: it answers NOT_LEADER, naming it;
 * `refuse`: the next calls of that method get this error; `forget`: sessions are unknown;
 * `hold`: calls of these methods are answered only when released (release()).
 */
export class FakeDispatcher {
  readonly calls: Call[] = [];
  readonly server = new grpc.Server();
  addr = '';
  leaderAddr = '';
  period = 50;
  forget = false;
  readonly refuse: { method: string; err: ShoalError }[] = [];
  readonly hold = new Set<string>();
  private held: (() => void)[] = [];
  private sessions = 0;

  async start(credentials = grpc.ServerCredentials.createInsecure()): Promise<this> {
    const handle = (method: string, answer: (req: Record<string, unknown>) => object) =>
      (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        this.calls.push({ method, req: call.request, at: performance.now(), peer: call.getPeer() });
        if (this.leaderAddr) {
          cb(new ShoalError('NOT_LEADER', 'this manager is not the leader', { details: { leaderAddr: this.leaderAddr } }).toGrpcStatus());
          return;
        }
        const i = this.refuse.findIndex((r) => r.method === method);
        if (i >= 0) {
          cb(this.refuse.splice(i, 1)[0]!.err.toGrpcStatus());
          return;
        }
        if (this.forget && method === 'Heartbeat') {
          cb(new ShoalError('NOT_FOUND', 'no such session').toGrpcStatus());
          return;
        }
        if (this.hold.has(method)) {
          this.held.push(() => cb(null, answer(call.request)));
          return;
        }
        cb(null, answer(call.request));
      };
    this.server.addService(getServiceDefinition('shoal.dispatcher.Dispatcher'), {
      Session: handle('Session', () => ({ sessionId: `s${++this.sessions}`, heartbeatPeriodMs: this.period, managers: [{ nodeId: 'm', addr: this.addr }] })),
      Heartbeat: handle('Heartbeat', () => ({ heartbeatPeriodMs: this.period, managers: [{ nodeId: 'm', addr: this.addr }] })),
      Assignments: handle('Assignments', () => ({ token: 't', tasks: [] })),
      UpdateTaskStatus: handle('UpdateTaskStatus', () => ({ rejected: [] })),
      Disconnect: handle('Disconnect', () => ({})),
    });
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.addr = `127.0.0.1:${port}`;
    return this;
  }

  /** Answers the held calls (those still open). */
  release(): void {
    for (const answer of this.held.splice(0)) answer();
  }

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  of(method: string, nodeId?: string): Call[] {
    return this.calls.filter((c) => c.method === method && (nodeId === undefined || c.req.nodeId === nodeId));
  }
}

/**
 * A TCP relay to `target` that counts the connections it accepts. While `holding`, a new
 * connection is accepted but its bytes wait: the client's TLS handshake cannot complete, so its
 * channel stays CONNECTING. release() lets the held connections through, and all later ones.
 */
export class HeldRelay {
  readonly server: net.Server;
  addr = '';
  connections = 0;
  holding = true;
  /** This many of the next connections are reset as soon as accepted (a manager's port refusing). */
  resetNext = 0;
  private readonly held: (() => void)[] = [];
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly target: string) {
    this.server = net.createServer((client) => {
      this.connections++;
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      if (this.resetNext > 0) {
        this.resetNext--;
        client.resetAndDestroy();
        return;
      }
      client.pause();
      if (this.holding) this.held.push(() => this.relay(client));
      else this.relay(client);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.addr = `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this;
  }

  release(): void {
    this.holding = false;
    for (const go of this.held.splice(0)) go();
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }

  private relay(client: net.Socket): void {
    if (client.destroyed) return;
    const [host, port] = [this.target.slice(0, this.target.lastIndexOf(':')), Number(this.target.slice(this.target.lastIndexOf(':') + 1))];
    const up = net.connect(port, host);
    this.sockets.add(up);
    up.on('close', () => this.sockets.delete(up));
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
    client.pipe(up);
    up.pipe(client);
    client.resume();
  }
}

/** A cluster's TLS: a manager's server credentials and a worker's channel to the managers. */
export async function clusterTls(): Promise<{ server: grpc.ServerCredentials; worker: ChannelSecurity }> {
  const day = 24 * 3600_000;
  const ca = await createRootCA();
  const manager = await issueWithNewKey(ca, { nodeId: 'm1', role: 'manager', clusterId: 'c1' }, day);
  const worker = await issueWithNewKey(ca, { nodeId: 'w1', role: 'worker', clusterId: 'c1' }, day);
  return { server: new NodeIdentity(undefined, { caPem: ca.certPem, ...manager }).serverCredentials(), worker: managerChannel({ caPem: ca.certPem, ...worker }) };
}

export async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
