// What `shoald init` prints on stdout once the cluster exists, as `docker swarm init` does: this
// node's id and the exact commands that join a worker and a manager through it.

import { joinInstructions } from '@shoal/api';

export function initBanner(nodeId: string, managerAddr: string, tokens: { worker: string; manager: string }): string {
  return [
    `Cluster initialized: current node (${nodeId}) is now a manager.`,
    '',
    joinInstructions('worker', tokens.worker, managerAddr),
    joinInstructions('manager', tokens.manager, managerAddr),
  ].join('\n');
}
