// A lab: Shoal hosts on one machine, each a container of the lab node image with its own Docker
// engine, shoald, disks (two volumes) and fixed address on the lab's bridge network, driven
// through the host's Docker engine. manager1 makes the cluster; every other node joins through it
// with a token, as a real host would. Beside the nodes, a registry (registry.ts) every node pulls
// from, which `load` fills from the host's engine. Everything is labelled with the lab's name (names.ts), which
// is how `down` finds all of it and nothing else. No state but the engine's and the admin
// certificate copied out of manager1 (state-dir.ts).

import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { ShoalError } from '@shoal/api';
import { nodeAddresses, registryAddress } from './addresses.js';
import { type ExecOptions, type ExecResult, engine, engineError, execIn, lastLine, statusOf } from './engine.js';
import { envLine } from './env.js';
import { labReference, labRepository, parseImageName } from './image-ref.js';
import {
  CONTROL_PORT, DEFAULT_IMAGE, DEFAULT_LAB, FIRST_MANAGER, LABEL_ADDR, LABEL_NODE, LABEL_ROLE, type MemberRole, type NodeName, REGISTRY,
  REGISTRY_PORT, type Role, checkLabName, compareNodes, containerName, labFilter, labLabels, networkName, nodeLabels, nodeNames,
  parseMemberName, parseNodeName, registryLabels, registryVolumeName, volumeNames,
} from './names.js';
import { notReady, parseNodeList } from './readiness.js';
import { hostRegistry, pushImage, registryAnswers, registryContainer } from './registry.js';
import { certDir } from './state-dir.js';

/** A node as `lab ls` shows it (the registry too: name and role `registry`). */
export interface LabNode {
  name: string;
  role: MemberRole;
  /** Its shoald's address on the lab network (reachable from the host); the registry's ADDR:5000. */
  addr: string;
  state: 'running' | 'stopped';
}

export interface LabOptions {
  /** The lab's name (default `lab`). */
  name?: string;
  /** The host's engine (default: as docker-modem finds it, DOCKER_HOST included). */
  docker?: Docker;
  /** Where labs keep their admin certificates (state-dir.ts: labsDir()). */
  labsDir: string;
  /** The node image `up` runs (default shoal/lab-node:dev). */
  image?: string;
}

export interface UpOptions {
  managers?: number;
  workers?: number;
  /** How long the lab may take to be ready (default 3 minutes). */
  timeoutMs?: number;
  /** Told each step, one line at a time. */
  progress?: (line: string) => void;
}

export interface DownResult {
  /** The nodes' containers. */
  nodes: number;
  /** The registry's container (0 or 1). */
  registries: number;
  networks: number;
  volumes: number;
}

/** What a node needs to run an engine of its own (`--privileged` fails here: no CAP_SYS_RESOURCE). */
const NESTED_ENGINE: Docker.HostConfig = {
  CapAdd: ['ALL'],
  CapDrop: ['SYS_RESOURCE'],
  SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
  // The docker CLI's `--security-opt systempaths=unconfined`: nothing of /proc or /sys masked.
  MaskedPaths: [],
  ReadonlyPaths: [],
  DeviceCgroupRules: ['a *:* rwm'],
};

const POLL_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The admin certificate `shoald init` writes in its data directory. */
const ADMIN_FILES = ['ca.pem', 'cert.pem', 'key.pem'] as const;

export class Lab {
  readonly name: string;
  private readonly docker: Docker;
  private readonly image: string;
  private readonly labsDir: string;

  constructor(opts: LabOptions) {
    this.name = checkLabName(opts.name ?? DEFAULT_LAB);
    this.docker = opts.docker ?? new Docker();
    this.image = opts.image ?? DEFAULT_IMAGE;
    this.labsDir = opts.labsDir;
  }

  /** The admin certificate directory of this lab on the host (what SHOAL_CERT_PATH names). */
  get certPath(): string {
    return certDir(this.labsDir, this.name);
  }

  /** `shoal lab SUB` as the user would type it for this lab. */
  command(sub: string): string {
    return `shoal lab ${sub}${this.name === DEFAULT_LAB ? '' : ` --name ${this.name}`}`;
  }

  /**
   * Makes the lab and waits until every node is Ready; copies the admin certificate out. A lab
   * that fails to get ready is left as it is, to be looked at (`down` removes it).
   */
  async up(opts: UpOptions = {}): Promise<LabNode[]> {
    const nodes = nodeNames(opts.managers ?? 3, opts.workers ?? 2);
    const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
    const progress = opts.progress ?? (() => {});
    await this.checkImage();
    if (await this.exists()) throw new ShoalError('ALREADY_EXISTS', `lab ${this.name} already exists: ${this.command('down')} removes it (or choose another --name)`);

    progress(`Creating lab ${this.name}: ${nodes.filter((n) => n.role === 'manager').length} managers, ${nodes.filter((n) => n.role === 'worker').length} workers (${this.image})`);
    const subnet = await this.createNetwork();
    const ips = nodeAddresses(subnet, nodes.length);
    const registry = `${registryAddress(subnet)}:${REGISTRY_PORT}`;
    const [first, ...others] = nodes.map((node, i) => ({ node, ip: ips[i]! }));
    await Promise.all(nodes.map((n) => this.createVolumes(n)));
    // Every node's engine trusts the registry (docker/lab-node-entrypoint.sh).
    const boot = (role: string, more: Record<string, string> = {}) => ({ SHOAL_BOOTSTRAP: role, SHOAL_LAB_REGISTRY: registry, ...more });
    await Promise.all([this.createRegistry(subnet), this.createNode(first!.node, first!.ip, boot('init'))]);
    progress(`${FIRST_MANAGER}: making the cluster; ${REGISTRY} at ${registry}`);
    const tokens = await this.joinTokens(deadline);
    const joinAddr = `${FIRST_MANAGER}:${CONTROL_PORT}`;
    await Promise.all(others.map(({ node, ip }) =>
      this.createNode(node, ip, boot(node.role, { SHOAL_JOIN_ADDR: joinAddr, SHOAL_JOIN_TOKEN: tokens[node.role] }))));
    if (others.length > 0) progress(`${others.map((o) => o.node.name).join(', ')}: joining through ${FIRST_MANAGER}`);
    await this.waitReady(nodes.map((n) => n.name), deadline);
    await this.waitRegistry(registry, deadline);
    await this.copyAdminCert();
    return this.list();
  }

  /** The lab's nodes, managers first, then its registry; NOT_FOUND when there is no such lab. */
  async list(): Promise<LabNode[]> {
    const cs = await engine('list the lab\'s containers', () => this.docker.listContainers({ all: true, filters: labFilter(this.name) }));
    if (cs.length === 0) throw this.noSuchLab();
    return cs
      .map((c) => {
        const isRegistry = c.Labels[LABEL_ROLE] === REGISTRY;
        const { name, role, index }: { name: string; role: MemberRole; index: number } = isRegistry ? { name: REGISTRY, role: REGISTRY, index: 0 } : parseNodeName(c.Labels[LABEL_NODE] ?? '');
        const addr = `${c.Labels[LABEL_ADDR]}:${isRegistry ? REGISTRY_PORT : CONTROL_PORT}`;
        return { name, role, index, addr, state: c.State === 'running' ? 'running' as const : 'stopped' as const };
      })
      .sort(compareNodes)
      .map(({ name, role, addr, state }) => ({ name, role, addr, state }));
  }

  /** The shell line that points `shoal` at this lab's managers and names its registry (env.ts). */
  async env(): Promise<string> {
    const members = await this.list();
    const managers = members.filter((n) => n.role === 'manager');
    if (!ADMIN_FILES.every((f) => existsSync(path.join(this.certPath, f)))) {
      throw new ShoalError('FAILED_PRECONDITION', `lab ${this.name} has no admin certificate in ${this.certPath} (it is written there by a ${this.command('up')} that got ready, on this machine, as this user)`);
    }
    const registry = members.find((n) => n.role === REGISTRY)?.addr;
    return envLine(managers.map((m) => m.addr.slice(0, -`:${CONTROL_PORT}`.length)), this.certPath, registry);
  }

  /**
   * Pushes images of the host's engine into the lab's registry; returns the reference each goes by
   * in the lab (image-ref.ts), in order. Every image is checked before anything is pushed.
   */
  async load(images: readonly string[], progress: (line: string) => void = () => {}): Promise<string[]> {
    if (images.length === 0) throw new ShoalError('INVALID_ARGUMENT', 'missing the image to load: shoal lab load IMAGE...');
    const names = images.map(parseImageName);
    const registry = (await this.list()).find((n) => n.role === REGISTRY);
    if (!registry) throw new ShoalError('FAILED_PRECONDITION', `lab ${this.name} has no registry (it was made before labs had one): ${this.command('down')}, then up again`);
    const info = await engine(`inspect the lab's ${REGISTRY}`, () => this.docker.getContainer(containerName(this.name, REGISTRY)).inspect());
    const host = info.State.Running ? hostRegistry(info) : undefined;
    if (!host) throw new ShoalError('FAILED_PRECONDITION', `the ${REGISTRY} of lab ${this.name} is stopped: ${this.command(`start ${REGISTRY}`)} powers it on`);
    for (const image of images) {
      const tags = await engine(`inspect image ${image}`, () => this.docker.getImage(image).inspect()).then((i) => i.RepoTags ?? [], (err: unknown) => {
        if (ShoalError.is(err, 'NOT_FOUND')) throw new ShoalError('NOT_FOUND', `no image ${image} on this host's Docker engine (docker pull or docker build it first)`);
        throw err;
      });
      // The push goes through a second tag, removed afterwards: an image known by no name would go with it.
      if (tags.length === 0) throw new ShoalError('INVALID_ARGUMENT', `image ${image} has no name on this host's Docker engine: docker tag it NAME:TAG, then load that`);
    }
    const refs: string[] = [];
    for (const [i, image] of images.entries()) {
      progress(`Pushing ${image} to lab ${this.name}'s ${REGISTRY}`);
      const name = names[i]!;
      await pushImage(this.docker, image, labRepository(host, name), name.tag);
      refs.push(labReference(registry.addr, name));
    }
    return refs;
  }

  /** Powers a node off: its container is killed, with its engine and every container on it. */
  async stop(node: string): Promise<void> {
    const c = await this.container(node);
    if (!(await this.running(c))) return;
    await engine(`stop ${node}`, () => c.kill());
  }

  /** Powers a node on: it boots its engine, then its shoald (with the node it holds). */
  async start(node: string): Promise<void> {
    const c = await this.container(node);
    if (await this.running(c)) return;
    await engine(`start ${node}`, () => c.start());
  }

  /** Runs a command on a node (its engine answers `docker` there; `shoal` its shoald). */
  async exec(node: string, cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (cmd.length === 0 || cmd[0] === '') throw new ShoalError('INVALID_ARGUMENT', 'missing the command to run on the node');
    const c = await this.container(node);
    if (!(await this.running(c))) throw new ShoalError('FAILED_PRECONDITION', `${node} is stopped: ${this.command(`start ${node}`)} powers it on`);
    return engine(`run ${cmd[0]} on ${node}`, () => execIn(c, cmd, opts));
  }

  /** Removes every container, network and volume of the lab, and its admin certificate. */
  async down(): Promise<DownResult> {
    const filters = labFilter(this.name);
    const containers = await engine('list the lab\'s containers', () => this.docker.listContainers({ all: true, filters }));
    const registries = containers.filter((c) => c.Labels[LABEL_ROLE] === REGISTRY).length;
    await Promise.all(containers.map((c) => engine(`remove ${c.Names[0] ?? c.Id}`, () => this.docker.getContainer(c.Id).remove({ force: true, v: true }))));
    const networks = await engine('list the lab\'s networks', () => this.docker.listNetworks({ filters }));
    for (const n of networks) await engine(`remove network ${n.Name}`, () => this.docker.getNetwork(n.Id).remove());
    const volumes = (await engine('list the lab\'s volumes', () => this.docker.listVolumes({ filters }))).Volumes ?? [];
    for (const v of volumes) await engine(`remove volume ${v.Name}`, () => this.docker.getVolume(v.Name).remove());
    const dir = path.dirname(this.certPath);
    const hadState = existsSync(dir);
    rmSync(dir, { recursive: true, force: true });
    if (containers.length + networks.length + volumes.length === 0 && !hadState) throw this.noSuchLab();
    return { nodes: containers.length - registries, registries, networks: networks.length, volumes: volumes.length };
  }

  private noSuchLab(): ShoalError {
    return new ShoalError('NOT_FOUND', `no lab named ${this.name} (${this.command('up')} makes one)`);
  }

  private async checkImage(): Promise<void> {
    try {
      await this.docker.getImage(this.image).inspect();
    } catch (err) {
      if (statusOf(err) === 404) throw new ShoalError('FAILED_PRECONDITION', `no image ${this.image}: build it with scripts/build-lab-image.sh`);
      throw engineError(`inspect image ${this.image}`, err);
    }
  }

  /** Whether anything of this lab is in the engine (a container, the network, a volume). */
  private async exists(): Promise<boolean> {
    const filters = labFilter(this.name);
    const [cs, ns, vs] = await engine('look for the lab', () =>
      Promise.all([this.docker.listContainers({ all: true, filters }), this.docker.listNetworks({ filters }), this.docker.listVolumes({ filters })]));
    return cs.length + ns.length + (vs.Volumes?.length ?? 0) > 0;
  }

  /**
   * The lab's bridge network, on a subnet of its own; returns the subnet. A network must be made
   * with its subnet to give containers fixed addresses (addresses.ts): the engine picks a free one
   * for a first, probing network, which is made again with it.
   */
  private async createNetwork(): Promise<string> {
    const Name = networkName(this.name);
    const base = { Name, Driver: 'bridge', CheckDuplicate: true, Labels: labLabels(this.name) };
    const probe = await engine(`create network ${Name}`, () => this.docker.createNetwork(base));
    const subnet = (await engine(`inspect network ${Name}`, () => probe.inspect())).IPAM?.Config?.find((c: { Subnet?: string }) => /^[0-9.]+\/\d+$/.test(c.Subnet ?? ''))?.Subnet as string | undefined;
    await engine(`remove network ${Name}`, () => probe.remove());
    if (!subnet) throw new ShoalError('FAILED_PRECONDITION', `the engine gave network ${Name} no IPv4 subnet`);
    await engine(`create network ${Name}`, () => this.docker.createNetwork({ ...base, IPAM: { Driver: 'default', Config: [{ Subnet: subnet }] } }));
    return subnet;
  }

  private async createVolumes(node: NodeName): Promise<void> {
    for (const Name of Object.values(volumeNames(this.name, node.name))) {
      await engine(`create volume ${Name}`, () => this.docker.createVolume({ Name, Labels: labLabels(this.name) }));
    }
  }

  /** Creates and starts the registry at its fixed address (the subnet's last but one), with its volume. */
  private async createRegistry(subnet: string): Promise<void> {
    const volume = registryVolumeName(this.name);
    await engine(`create volume ${volume}`, () => this.docker.createVolume({ Name: volume, Labels: labLabels(this.name) }));
    const ip = registryAddress(subnet);
    const name = containerName(this.name, REGISTRY);
    const opts = registryContainer({ name, image: this.image, net: networkName(this.name), ip, volume, labels: registryLabels(this.name, ip) });
    const c = await engine(`create ${name}`, () => this.docker.createContainer(opts));
    await engine(`start ${name}`, () => c.start());
  }

  /** Waits until the registry answers at its lab address (as the nodes and the host reach it). */
  private async waitRegistry(addr: string, deadline: number): Promise<void> {
    for (;;) {
      await this.checkAlive(REGISTRY);
      if (await registryAnswers(addr)) return;
      if (Date.now() > deadline) throw new ShoalError('UNAVAILABLE', `lab ${this.name}: its ${REGISTRY} does not answer at ${addr}; the lab is left as it is: ${this.command('down')} removes it`);
      await sleep(POLL_MS);
    }
  }

  /** Creates and starts a node's container: its first boot does what `env` says (docker/entrypoint.sh). */
  private async createNode(node: NodeName, ip: string, env: Record<string, string>): Promise<void> {
    const net = networkName(this.name);
    const vols = volumeNames(this.name, node.name);
    const name = containerName(this.name, node.name);
    const c = await engine(`create ${name}`, () =>
      this.docker.createContainer({
        name,
        Hostname: node.name,
        Image: this.image,
        Labels: nodeLabels(this.name, node, ip),
        // A host's shoald runs as root, as dockerd does: it makes the overlay networks' bridges,
        // VXLAN devices and nftables rules in the host's network namespace.
        Env: Object.entries({ ...env, SHOAL_HOSTNAME: node.name, SHOAL_AS_ROOT: '1' }).map(([k, v]) => `${k}=${v}`),
        HostConfig: {
          ...NESTED_ENGINE,
          Binds: ['/sys/fs/cgroup:/sys/fs/cgroup:rw', `${vols.docker}:/var/lib/docker`, `${vols.shoal}:/var/lib/shoal`],
          NetworkMode: net,
        },
        // Reached by its node name (the other nodes join `manager1:4242`) and at its fixed address.
        NetworkingConfig: { EndpointsConfig: { [net]: { IPAMConfig: { IPv4Address: ip }, Aliases: [node.name] } } },
      }));
    await engine(`start ${name}`, () => c.start());
  }

  /** A node's container, by its node name (or the registry's). */
  private async container(node: string): Promise<Docker.Container> {
    const name = parseMemberName(node);
    const filters = { label: [...labFilter(this.name).label, `${LABEL_NODE}=${name}`] };
    const [c] = await engine('list the lab\'s containers', () => this.docker.listContainers({ all: true, filters }));
    if (!c) {
      const nodes = (await this.list()).filter((n) => n.role !== REGISTRY).map((n) => n.name);
      throw new ShoalError('NOT_FOUND', `lab ${this.name} has no node ${name} (its nodes: ${nodes.join(', ')})`);
    }
    return this.docker.getContainer(c.Id);
  }

  private async running(c: Docker.Container): Promise<boolean> {
    return (await engine('inspect a node', () => c.inspect())).State.Running;
  }

  /** Fails with the node's last words when its container has stopped (it would never get ready). */
  private async checkAlive(node: string): Promise<void> {
    const c = this.docker.getContainer(containerName(this.name, node));
    const info = await engine(`inspect ${node}`, () => c.inspect());
    if (info.State.Running) return;
    const log = await engine(`read ${node}'s log`, () => c.logs({ stdout: true, stderr: true, tail: 20, follow: false }));
    const last = await lastLine(log, c.modem);
    throw new ShoalError('FAILED_PRECONDITION', `${node} stopped while the lab was starting (exit code ${info.State.ExitCode})${last ? `: ${last}` : ''}`);
  }

  /** manager1's join tokens, once its control API answers. */
  private async joinTokens(deadline: number): Promise<Record<Role, string>> {
    for (;;) {
      await this.checkAlive(FIRST_MANAGER);
      const [m, w] = await Promise.all(['manager', 'worker'].map((role) => this.exec(FIRST_MANAGER, ['shoal', 'swarm', 'join-token', '-q', role])));
      if (m!.exitCode === 0 && w!.exitCode === 0 && m!.stdout.trim() && w!.stdout.trim()) return { manager: m!.stdout.trim(), worker: w!.stdout.trim() };
      if (Date.now() > deadline) {
        throw new ShoalError('UNAVAILABLE', `lab ${this.name}: ${FIRST_MANAGER}'s shoald did not answer in time (${(m!.stderr || w!.stderr).trim().split('\n')[0]}); the lab is left as it is: ${this.command('down')} removes it`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Waits until manager1 lists every node as ready; on timeout, says which are not. */
  private async waitReady(nodes: readonly string[], deadline: number): Promise<void> {
    for (;;) {
      for (const n of nodes) await this.checkAlive(n);
      const r = await this.exec(FIRST_MANAGER, ['shoal', 'node', 'ls', '--format', 'json']);
      const listed = r.exitCode === 0 ? parseNodeList(r.stdout) : undefined;
      const missing = listed ? notReady(nodes, listed) : [...nodes];
      if (missing.length === 0) return;
      if (Date.now() > deadline) {
        throw new ShoalError('UNAVAILABLE', `lab ${this.name} not ready in time: ${missing.join(', ')} not Ready in ${FIRST_MANAGER}'s \`shoal node ls\`; the lab is left as it is: ${this.command('down')} removes it`);
      }
      await sleep(POLL_MS);
    }
  }

  /** manager1's admin certificate into this lab's directory on the host (0700, the key 0600). */
  private async copyAdminCert(): Promise<void> {
    const files = await Promise.all(ADMIN_FILES.map(async (f) => {
      const r = await this.exec(FIRST_MANAGER, ['cat', `/var/lib/shoal/admin/${f}`]);
      if (r.exitCode !== 0 || !r.stdout) throw new ShoalError('INTERNAL', `cannot read ${FIRST_MANAGER}'s admin certificate (${f}): ${r.stderr.trim() || `exit code ${r.exitCode}`}`);
      return [f, r.stdout] as const;
    }));
    mkdirSync(this.certPath, { recursive: true, mode: 0o700 });
    chmodSync(path.dirname(this.certPath), 0o700);
    chmodSync(this.certPath, 0o700);
    for (const [f, text] of files) writeFileSync(path.join(this.certPath, f), text, { mode: 0o600 });
  }
}

