// What a lab and its nodes are called, on the command line and in the host's Docker engine: the
// lab's name, its nodes' names (managerN, workerN: also their Shoal hostnames), the names and
// labels of the containers, network and volumes that make it (the labels are how `down` finds
// every one of them, and nothing else), and the checks of what a user may ask for.

import { ShoalError } from '@shoal/api';

/** The lab of a command without --name. */
export const DEFAULT_LAB = 'lab';
/** The node image (scripts/build-lab-image.sh builds it). */
export const DEFAULT_IMAGE = 'shoal/lab-node:dev';
/** The port shoald listens on in every node (Raft, the dispatcher, joins and the control API). */
export const CONTROL_PORT = 4242;

/** The lab's registry: its name where a node's goes (`lab ls`, `lab stop registry`), its port. */
export const REGISTRY = 'registry';
export const REGISTRY_PORT = 5000;

/** Labels on everything a lab is made of (containers, network, volumes). */
export const LABEL_LAB = 'org.shoal.lab';
/** On a node's container: its node name, role and address on the lab network (the registry's too). */
export const LABEL_NODE = 'org.shoal.lab.node';
export const LABEL_ROLE = 'org.shoal.lab.role';
export const LABEL_ADDR = 'org.shoal.lab.addr';

export const MAX_MANAGERS = 9;
export const MAX_WORKERS = 20;

export type Role = 'manager' | 'worker';
/** What `lab ls` lists: the nodes, then the registry. */
export type MemberRole = Role | typeof REGISTRY;

export interface NodeName {
  /** manager1, worker2: the node's name in the lab and its Shoal hostname. */
  name: string;
  role: Role;
  /** 1-based. */
  index: number;
}

const LAB_NAME = /^[a-z0-9][a-z0-9-]{0,29}$/;

/** A lab's name as given, or an INVALID_ARGUMENT error saying what one may be. */
export function checkLabName(name: string): string {
  if (!LAB_NAME.test(name)) {
    throw new ShoalError('INVALID_ARGUMENT', `invalid lab name ${JSON.stringify(name)}: 1 to 30 lowercase letters, digits and '-', starting with a letter or digit`);
  }
  return name;
}

function checkCount(flag: string, n: number, min: number, max: number): void {
  if (!Number.isInteger(n) || n < min || n > max) throw new ShoalError('INVALID_ARGUMENT', `invalid ${flag} ${n}: a whole number from ${min} to ${max}`);
}

/** The nodes of a lab of `managers` managers and `workers` workers, managers first. */
export function nodeNames(managers: number, workers: number): NodeName[] {
  checkCount('--managers', managers, 1, MAX_MANAGERS);
  checkCount('--workers', workers, 0, MAX_WORKERS);
  const of = (role: Role, n: number) => Array.from({ length: n }, (_, i) => ({ name: `${role}${i + 1}`, role, index: i + 1 }));
  return [...of('manager', managers), ...of('worker', workers)];
}

/** A node's name as typed (`worker1`), or an INVALID_ARGUMENT error. */
export function parseNodeName(s: string): NodeName {
  const m = /^(manager|worker)([1-9][0-9]*)$/.exec(s);
  if (!m) throw new ShoalError('INVALID_ARGUMENT', `invalid node name ${JSON.stringify(s)}: lab nodes are manager1..N and worker1..N`);
  return { name: s, role: m[1] as Role, index: Number(m[2]) };
}

/** A name `lab stop|start|exec` take: a node's, or `registry`; else an INVALID_ARGUMENT error. */
export function parseMemberName(s: string): string {
  if (s === REGISTRY) return s;
  try {
    return parseNodeName(s).name;
  } catch {
    throw new ShoalError('INVALID_ARGUMENT', `invalid node name ${JSON.stringify(s)}: lab nodes are manager1..N and worker1..N, and the lab's registry is ${REGISTRY}`);
  }
}

const ROLE_ORDER: readonly MemberRole[] = ['manager', 'worker', REGISTRY];

/** Managers first, each role in number order (manager2 before manager10), the registry last. */
export function compareNodes(a: { role: MemberRole; index: number }, b: { role: MemberRole; index: number }): number {
  if (a.role !== b.role) return ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role);
  return a.index - b.index;
}

/** The first manager: it makes the cluster, the others join through it. */
export const FIRST_MANAGER = 'manager1';

/** The names of a lab's objects in the host's engine (prefixed: other labs and containers share it). */
export const networkName = (lab: string) => `shoal-${lab}`;
export const containerName = (lab: string, node: string) => `shoal-${lab}-${node}`;
/** A node's two disks: its engine's images and containers, and its shoald's data directory. */
export const volumeNames = (lab: string, node: string) => ({ docker: `shoal-${lab}-${node}-docker`, shoal: `shoal-${lab}-${node}-shoal` });

/** The registry's one disk: the images loaded into the lab. */
export const registryVolumeName = (lab: string) => `shoal-${lab}-${REGISTRY}-data`;

/** The labels of a lab's network and volumes. */
export const labLabels = (lab: string): Record<string, string> => ({ [LABEL_LAB]: lab });

/** The labels of a node's container. */
export function nodeLabels(lab: string, node: NodeName, ip: string): Record<string, string> {
  return { [LABEL_LAB]: lab, [LABEL_NODE]: node.name, [LABEL_ROLE]: node.role, [LABEL_ADDR]: ip };
}

/** The labels of the registry's container (named and addressed as a node is). */
export function registryLabels(lab: string, ip: string): Record<string, string> {
  return { [LABEL_LAB]: lab, [LABEL_NODE]: REGISTRY, [LABEL_ROLE]: REGISTRY, [LABEL_ADDR]: ip };
}

/** The Docker filter that selects every object of a lab. */
export const labFilter = (lab: string) => ({ label: [`${LABEL_LAB}=${lab}`] });
