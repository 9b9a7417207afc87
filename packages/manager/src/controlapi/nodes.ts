// The control API's node calls (`shoal node ...`): listing and labels/availability here; joining
// and leaving Raft (promote, demote, remove) are the membership manager's, called within one bound.

import { performance } from 'node:perf_hooks';
import { ShoalError } from '@shoal/api';
import type { GetNodeRequest, Node, RemoveNodeRequest, UpdateNodeRequest } from '@shoal/store';
import { updateOp } from '@shoal/store';
import { MEMBERSHIP_CALL_MS, timeLeft } from '../membership.js';
import { type ControlContext, READ_TIMEOUT_MS, read, required, update } from './context.js';

export interface NodeView {
  node: Node;
  leader: boolean;
  reachability: string;
}

/** The nodes as answered: each with whether it leads and its reachability (asked once per answer). */
async function nodeViews(ctx: ControlContext, nodes: Node[]): Promise<NodeView[]> {
  const reach = await ctx.membership.reachability();
  const leader = ctx.raft.status().leader;
  return nodes.map((n) => ({ node: n, leader: n.id === leader, reachability: reach(n) }));
}

export async function listNodes(ctx: ControlContext): Promise<{ nodes: NodeView[] }> {
  const store = await read(ctx);
  const nodes = (store.list('node') as Node[]).sort((a, b) => a.description.hostname.localeCompare(b.description.hostname) || a.id.localeCompare(b.id));
  return { nodes: await nodeViews(ctx, nodes) };
}

async function nodeView(ctx: ControlContext, n: Node): Promise<NodeView> {
  return (await nodeViews(ctx, [n]))[0]!;
}

export async function getNode(ctx: ControlContext, req: GetNodeRequest): Promise<{ node: NodeView }> {
  const store = await read(ctx);
  return { node: await nodeView(ctx, store.resolveNode(required(req.node, 'node'))) };
}

export async function updateNode(
  ctx: ControlContext,
  req: UpdateNodeRequest,
): Promise<{ node: NodeView }> {
  const ref = required(req.node, 'node');
  const availability = req.availability || '';
  if (availability && !['active', 'pause', 'drain'].includes(availability)) {
    throw new ShoalError('INVALID_ARGUMENT', `availability must be active, pause or drain, not ${availability}`);
  }
  for (const k of Object.keys(req.labelAdd ?? {})) if (!k) throw new ShoalError('INVALID_ARGUMENT', 'a label key must not be empty');
  let id = '';
  await update(ctx, (store) => {
    const n = store.resolveNode(ref);
    id = n.id;
    const labels = { ...n.spec.labels, ...(req.labelAdd ?? {}) };
    for (const k of req.labelRm ?? []) {
      if (!(k in labels)) throw new ShoalError('NOT_FOUND', `node ${n.description.hostname} has no label ${k}`);
      delete labels[k];
    }
    const spec = { ...n.spec, labels, availability: (availability || n.spec.availability) as Node['spec']['availability'] };
    return [updateOp('node', { ...n, spec, updatedAt: ctx.now() })];
  });
  const store = await read(ctx);
  return { node: await nodeView(ctx, store.get('node', id) as Node) };
}

// Membership calls: every wait together stays inside MEMBERSHIP_CALL_MS (a client gives 10 s).
// The answer comes from the local store, which has the call's own write applied: no second read,
// which a leader that has just handed over (demoting itself) would make through the next leader
// while that one takes it out of Raft.

export async function promoteNode(ctx: ControlContext, req: GetNodeRequest): Promise<{ node: NodeView }> {
  const until = performance.now() + MEMBERSHIP_CALL_MS;
  const store = await read(ctx, timeLeft(until, READ_TIMEOUT_MS, 'the promotion'));
  const n = store.resolveNode(required(req.node, 'node'));
  await ctx.membership.promote(n, until);
  return { node: await nodeView(ctx, ctx.store.get('node', n.id) as Node) };
}

export async function demoteNode(ctx: ControlContext, req: GetNodeRequest): Promise<{ node: NodeView }> {
  const until = performance.now() + MEMBERSHIP_CALL_MS;
  const store = await read(ctx, timeLeft(until, READ_TIMEOUT_MS, 'the demotion'));
  const n = store.resolveNode(required(req.node, 'node'));
  await ctx.membership.demote(n, false, until);
  return { node: await nodeView(ctx, ctx.store.get('node', n.id) as Node) };
}

export async function removeNode(ctx: ControlContext, req: RemoveNodeRequest): Promise<{ id: string }> {
  const until = performance.now() + MEMBERSHIP_CALL_MS;
  const store = await read(ctx, timeLeft(until, READ_TIMEOUT_MS, 'the removal'));
  const n = store.resolveNode(required(req.node, 'node'));
  await ctx.membership.remove(n, !!req.force, until);
  return { id: n.id };
}
