// The command a new node runs to join a cluster, as `shoald init` and `shoal swarm join-token`
// print it (one wording for both, as docker's swarm init and join-token share theirs).

/** The lines that tell an operator how to add a `role` node through the manager at `managerAddr`. */
export function joinInstructions(role: string, token: string, managerAddr: string): string {
  return [
    `To add a ${role} to this cluster, run the following command on the new node:`,
    '',
    `    shoald join --data-dir DIR --listen-addr HOST:PORT --join-addr ${managerAddr} --token ${token}`,
    '',
  ].join('\n');
}
