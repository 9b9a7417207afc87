#!/usr/bin/env node
// Starts a local three-member Raft cluster (three OS processes on 127.0.0.1, data under
// .shoal/raft-cluster) and prints its status every few seconds until Ctrl-C. A stand-in for the
// full `shoald` cluster until the manager daemon lands; it exercises the same Raft code.
import { mkdirSync } from 'node:fs';
import { ProcessCluster } from '@shoal/raft/testing';

const baseDir = new URL('../.shoal/raft-cluster/', import.meta.url).pathname;
mkdirSync(baseDir, { recursive: true });
const cluster = await ProcessCluster.start({ size: 3, baseDir });
const stop = async () => {
  await cluster.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
console.log(`raft cluster up: ${cluster.members.map((m) => `${m.id}@${m.addr}`).join(', ')} (data in ${baseDir})`);
let n = 0;
for (;;) {
  const leader = await cluster.waitLeader(20_000);
  await leader.request({ cmd: 'put', key: 'heartbeat', value: String(n++) });
  const st = await Promise.all(cluster.members.map((m) => m.request({ cmd: 'status' })));
  console.log(JSON.stringify(st.map((s) => ({ id: s.id, role: s.role, term: s.term, commit: s.commit, applied: s.applied }))));
  await new Promise((r) => setTimeout(r, 3000));
}
