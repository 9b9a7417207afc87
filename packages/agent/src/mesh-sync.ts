// Feeds this node's routing mesh: long-polls the dispatcher's mesh view (every published ingress
// port and the running tasks behind it) and turns it into the Mesh's table. Local tasks are
// reached at their container's address (looked up once per container); remote ones through the
// forwarding address of the node that runs them. Ports the mesh cannot bind are kept for the
// heartbeat, so `node inspect` can say which and why.
//
// Kernel mode (`--mesh-mode kernel`): the same table also feeds the node's KernelRoutes (iptables
// DNAT of the local replicas' share of each port); the ports it serves are marked
// `localInKernel` in the Mesh's table, whose listener then only gets the remote replicas' share.
// If iptables cannot be used, the node says so (meshErrors) and the userland proxy serves all.
// On the ingress overlay (TaskNetworks tells where this node stands on it: setIngress), the
// remote replicas' share is DNATed in the kernel too, to their nodes' ingress addresses; the
// node reports its mode (`mesh_mode`: userland, kernel, kernel+ingress) with every heartbeat.
//
// UDP published ports: the kernel routes serve them wholly where they can (a local replica, or
// one behind the ingress overlay); the others go to the userland relay, which reaches this node's
// replicas only: a node that can serve a UDP port neither way says so in mesh_errors.
//
// A local container that dies is dropped from the table at once, on the engine's event, without
// waiting for the managers' view to say so: the kernel cannot retry a connection on another
// replica as the userland proxy does, so the sooner its rule goes, the fewer connections fail.

import type { Logger } from '@shoal/api';
import type { Backend, KernelIngress, KernelRoutes, Mesh, MeshTable } from '@shoal/mesh';
import type { ContainerEvent, EventSubscription, Executor } from './executor.js';
import { type DispatcherLink, type MeshView, LONG_POLL_WAIT_MS } from './runner.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class MeshSync {
  private running = false;
  private loop: Promise<void> | undefined;
  private token = '';
  /** container id → its address on the Docker network (a container keeps it while it runs). */
  private readonly ips = new Map<string, string>();
  /** `PORT/PROTOCOL` → why this node cannot serve it. */
  private readonly portErrors = new Map<string, { port: number; text: string }>();
  private unresolved = 0;
  /** Why kernel mode is not (fully) in use, for the heartbeat. */
  private kernelError: string | undefined;
  /** The last table, fed again when the kernel routes fail or recover. */
  private last: MeshTable | undefined;
  /** Local tasks whose container died, left out until the view no longer lists them. */
  private readonly gone = new Set<string>();
  private events: EventSubscription | undefined;
  /** Nodes the cluster removed: the forwarding listener refuses their certificates. */
  private removed = new Set<string>();

  isRemoved(nodeId: string): boolean {
    return this.removed.has(nodeId);
  }

  constructor(
    private readonly mesh: Mesh,
    private readonly link: DispatcherLink,
    private readonly executor: Executor,
    private readonly nodeId: string,
    private readonly log: Logger,
    /** Kernel mode; undefined: the userland proxy serves everything. */
    private kernel?: KernelRoutes,
  ) {}

  /** For KernelRoutes' onError option: its rules failed (removed; userland serves all) or work again. */
  onKernelError(err: Error | null): void {
    this.kernelError = err ? `kernel mode: ${err.message} (the userland proxy serves every port meanwhile)` : undefined;
    if (this.last && this.running) {
      this.apply(this.last).catch((e: Error) => this.log.warn({ err: e.message }, 'mesh update failed'));
    }
  }

  /** This node on the ingress overlay (undefined: not on it): the kernel routes follow. */
  setIngress(ingress: KernelIngress | undefined): void {
    if (!this.kernel) return;
    const before = this.kernel.routedPorts();
    const after = this.kernel.setIngress(ingress);
    const same = before.size === after.size && [...after].every((p) => before.has(p));
    if (!same && this.last && this.running) this.apply(this.last).catch((e: Error) => this.log.warn({ err: e.message }, 'mesh update failed'));
  }

  /** How published ports are served now, for the heartbeat (NodeStatus.mesh_mode). */
  mode(): 'userland' | 'kernel' | 'kernel+ingress' {
    if (!this.kernel || this.kernel.error) return 'userland';
    return this.kernel.servingIngress ? 'kernel+ingress' : 'kernel';
  }

  /** For the Mesh's onPortError option. */
  onPortError(port: number, err: Error | null, protocol: 'tcp' | 'udp' = 'tcp'): void {
    const key = `${port}/${protocol}`;
    if (err) {
      this.portErrors.set(key, { port, text: `${key}: ${err.message}` });
      this.log.warn({ port, protocol, err: err.message }, 'cannot serve a published port on this node');
    } else {
      this.portErrors.delete(key);
    }
  }

  /** Published ports this node cannot serve (and a kernel mode that does not work), for the heartbeat. */
  errors(): string[] {
    const out = [...this.portErrors.values()].sort((a, b) => a.port - b.port || a.text.localeCompare(b.text)).map((e) => e.text);
    if (this.kernelError) out.push(this.kernelError);
    return out;
  }

  start(): void {
    if (this.running || !this.link.meshView) return;
    this.running = true;
    try {
      this.events = this.executor.events((e) => this.onContainerEvent(e), {
        onError: (err) => this.log.debug({ err: err.message }, 'mesh: container events unavailable; retrying'),
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'mesh: no container events: a dead local replica leaves the mesh when the managers say so');
    }
    this.loop = this.run();
  }

  /** A local replica's container stopped: out of the table now (the view follows later). */
  private onContainerEvent(e: ContainerEvent): void {
    if (e.action === 'start' || !e.taskId || !this.running || this.gone.has(e.taskId) || !this.last) return;
    if (!this.last.ports.some((p) => p.backends.some((b) => b.local && b.taskId === e.taskId))) return;
    this.gone.add(e.taskId);
    this.log.debug({ taskId: e.taskId, action: e.action }, 'mesh: local replica stopped; out of the table');
    this.apply(this.last).catch((err: Error) => this.log.warn({ err: err.message }, 'mesh update failed'));
  }

  /** Stops following the view; in kernel mode, removes the node's iptables chains and jumps. */
  async stop(): Promise<void> {
    this.running = false;
    this.events?.close();
    // A long poll may be in flight for seconds: its answer is ignored once stopped.
    await Promise.race([this.loop?.catch(() => undefined), sleep(200)]);
    await this.kernel?.stop();
  }

  /** Kernel mode: installs the node's chains (removing stale ones); on failure, userland only. */
  private async startKernel(): Promise<void> {
    const k = this.kernel!;
    try {
      await k.start();
      this.log.info({ chain: k.chains.nat, address: k.address }, 'mesh: kernel mode (iptables DNAT to local replicas)');
    } catch (err) {
      const msg = (err as Error).message;
      this.kernel = undefined;
      this.kernelError = `kernel mode unavailable: ${msg} (the userland proxy serves every port)`;
      this.log.error({ err: msg }, 'mesh: kernel mode cannot be used (is iptables installed, and shoald root?): the userland proxy serves every port');
    }
  }

  /** Tables applied to the mesh so far (each change of the published ports or their endpoints). */
  tableUpdates = 0;

  /** Feeds the table to the kernel routes (kernel mode) and to the Mesh. */
  private apply(t: MeshTable): Promise<void> {
    this.tableUpdates++;
    if (this.gone.size > 0) {
      t = { ports: t.ports.map((p) => ({ ...p, backends: p.backends.filter((b) => !(b.local && this.gone.has(b.taskId))) })) };
    }
    this.last = t;
    if (!this.kernel) return this.mesh.update(t);
    const routed = this.kernel.update(t);
    // A UDP port the kernel serves is served whole: the relay leaves it alone.
    const udp = this.kernel.routedUdpPorts();
    const ports = t.ports.filter((p) => p.protocol !== 'udp' || !udp.has(p.port));
    return this.mesh.update({ ports: ports.map((p) => (p.protocol !== 'udp' && routed.has(p.port) ? { ...p, localInKernel: true } : p)) });
  }

  private async run(): Promise<void> {
    if (this.kernel) await this.startKernel();
    while (this.running) {
      try {
        const v = await this.link.meshView!(this.token, this.token ? LONG_POLL_WAIT_MS : 0);
        if (!this.running) break;
        this.removed = new Set(v.removedNodes ?? []);
        const t = await this.table(v);
        if (!this.running) break;
        await this.apply(t);
        // A local task whose address could not be read yet: ask again soon, not at the next change.
        if (this.unresolved > 0) await sleep(300);
        else this.token = v.token;
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'mesh view unavailable; retrying');
        this.token = '';
        await sleep(200);
      }
    }
  }

  /** The Mesh's table for a view. */
  async table(v: MeshView): Promise<MeshTable> {
    const wanted = new Set<string>();
    for (const p of v.ports) for (const b of p.backends) if (b.nodeId === this.nodeId && b.containerId) wanted.add(b.containerId);
    for (const id of [...this.ips.keys()]) if (!wanted.has(id)) this.ips.delete(id);
    // Dead local tasks the view no longer lists: forgotten.
    const listed = new Set<string>();
    for (const p of v.ports) for (const b of p.backends) if (b.nodeId === this.nodeId) listed.add(b.taskId);
    for (const id of [...this.gone]) if (!listed.has(id)) this.gone.delete(id);
    this.unresolved = 0;
    await Promise.all(
      [...wanted].filter((id) => !this.ips.has(id)).map(async (id) => {
        try {
          const st = await this.executor.inspect(id);
          if (st.running && st.ip) this.ips.set(id, st.ip);
          else this.unresolved++;
        } catch (err) {
          this.unresolved++;
          this.log.debug({ container: id, err: (err as Error).message }, 'no address for a local task');
        }
      }),
    );
    return {
      ports: v.ports
        .filter((p) => p.protocol === 'tcp' || p.protocol === 'udp')
        .map((p) => ({
          port: p.port,
          protocol: p.protocol as 'tcp' | 'udp',
          serviceId: p.serviceId,
          serviceName: p.serviceName,
          proxyProtocol: p.proxyProtocol,
          backends: p.backends.flatMap((b): Backend[] => {
            if (b.nodeId === this.nodeId) {
              const ip = this.ips.get(b.containerId);
              return ip ? [{ taskId: b.taskId, nodeId: b.nodeId, local: true, addr: `${ip}:${p.targetPort}`, targetPort: p.targetPort }] : [];
            }
            return b.via ? [{ taskId: b.taskId, nodeId: b.nodeId, local: false, via: b.via, targetPort: p.targetPort }] : [];
          }),
        })),
    };
  }
}
