// Feeds this node's routing mesh: long-polls the dispatcher's mesh view (every published ingress
// port and the running tasks behind it) and turns it into the Mesh's table. Local tasks are
// reached at their container's address (looked up once per container); remote ones through the
// forwarding address of the node that runs them. Ports the mesh cannot bind are kept for the
// heartbeat, so `node inspect` can say which and why.

import type { Backend, Mesh, MeshTable } from '@shoal/mesh';
import type { DispatcherLink, Executor, MeshView } from '@shoal/agent';

export interface MeshSyncLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

const POLL_WAIT_MS = 10_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class MeshSync {
  private running = false;
  private loop: Promise<void> | undefined;
  private token = '';
  /** container id → its address on the Docker network (a container keeps it while it runs). */
  private readonly ips = new Map<string, string>();
  private readonly portErrors = new Map<number, string>();
  private unresolved = 0;

  constructor(
    private readonly mesh: Mesh,
    private readonly link: DispatcherLink,
    private readonly executor: Executor,
    private readonly nodeId: string,
    private readonly log: MeshSyncLogger,
  ) {}

  /** For the Mesh's onPortError option. */
  onPortError(port: number, err: Error | null): void {
    if (err) {
      this.portErrors.set(port, `${port}/tcp: ${err.message}`);
      this.log.warn({ port, err: err.message }, 'cannot serve a published port on this node');
    } else {
      this.portErrors.delete(port);
    }
  }

  /** Published ports this node cannot serve, for the heartbeat. */
  errors(): string[] {
    return [...this.portErrors.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e);
  }

  start(): void {
    if (this.running || !this.link.meshView) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    // A long poll may be in flight for seconds: its answer is ignored once stopped.
    await Promise.race([this.loop?.catch(() => undefined), sleep(200)]);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const v = await this.link.meshView!(this.token, this.token ? POLL_WAIT_MS : 0);
        if (!this.running) break;
        const t = await this.table(v);
        await this.mesh.update(t);
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
        .filter((p) => p.protocol === 'tcp')
        .map((p) => ({
          port: p.port,
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
