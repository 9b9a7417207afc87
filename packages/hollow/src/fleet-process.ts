// One process of hollow nodes, started by a benchmark or a test with child_process.fork:
//   fleet-process.js JOIN_ADDR TOKEN COUNT PREFIX [STEP_MS]
// Over IPC it answers 'state' with its FleetState and 'stop' by stopping its nodes cleanly and
// exiting. Killing it (SIGKILL) is a power cut of all its nodes at once: no goodbye, no Disconnect.
// Run by hand (no IPC), it prints its state every 5 s and stops on SIGINT/SIGTERM.
// SHOAL_HOLLOW_LOGS=DIR: every node's agent logs at debug level to DIR/PREFIX.log (JSON lines,
// the node's host name in each), to see what nodes did when a benchmark's figures look wrong.

import { join } from 'node:path';
import { pino } from 'pino';
import { HollowFleet } from './fleet.js';

const [joinAddr, token, count, prefix, stepMs] = process.argv.slice(2);
if (!joinAddr || !token || !count || !prefix || !(Number(count) > 0)) {
  console.error('usage: fleet-process.js JOIN_ADDR TOKEN COUNT PREFIX [STEP_MS]');
  process.exit(2);
}
const logDir = process.env.SHOAL_HOLLOW_LOGS;
const log = logDir ? pino({ level: 'debug', base: undefined }, pino.destination({ dest: join(logDir, `${prefix}.log`), mkdir: true })) : undefined;
const fleet = new HollowFleet({
  joinAddr,
  token,
  count: Number(count),
  prefix,
  stepMs: stepMs === undefined ? undefined : Number(stepMs),
  loggerFor: log ? (hostname) => log.child({ node: hostname }) : undefined,
});
const t0 = performance.now();
await fleet.join();
const joined = { type: 'joined', nodes: fleet.nodes.map((n) => n.nodeId), failures: fleet.failures, ms: Math.round(performance.now() - t0) };

const stop = async () => {
  await fleet.stop();
  process.exit(0);
};
if (process.send) {
  process.send(joined);
  process.on('message', (m: { type: string }) => {
    if (m.type === 'state') process.send!({ type: 'state', state: fleet.state() });
    else if (m.type === 'stop') void stop();
  });
  // The parent gone: nobody would stop these nodes.
  process.on('disconnect', () => void stop());
} else {
  console.log(JSON.stringify({ ...joined, nodes: joined.nodes.length }));
  setInterval(() => console.log(JSON.stringify(fleet.state())), 5_000).unref();
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  setInterval(() => undefined, 1 << 30);
}
