// A DNS client for overlay-bench.ts, run by it inside a task's network namespace
// (`nsenter -t PID -n node dns-probe.js ...`): the namespace is the only way to ask the node's
// service DNS as a task does (it answers on the network's gateway, for the tasks on it).
//   latency SERVER COUNT NAME...  COUNT A queries, one at a time, the names in turn; prints one JSON
//                                 line: every round-trip (ms), the timeouts, the answers' rcodes
//   watch SERVER NAME INTERVAL_MS asks NAME every INTERVAL_MS; prints a JSON line {t, addrs} (t:
//                                 Date.now(), the answer's sorted A records) each time they change,
//                                 until stdin closes (the bench's end)
import { createSocket } from 'node:dgram';
import * as dnsPacket from 'dns-packet';

const TIMEOUT_MS = 1000;
const [mode, server, ...rest] = process.argv.slice(2);
if (!server || (mode !== 'latency' && mode !== 'watch')) {
  console.error('usage: dns-probe.js latency SERVER COUNT NAME... | watch SERVER NAME INTERVAL_MS');
  process.exit(2);
}

const sock = createSocket('udp4');
let nextId = 1;
const pending = new Map<number, (r: dnsPacket.DecodedPacket) => void>();
sock.on('message', (msg) => {
  const r = dnsPacket.decode(msg);
  const done = r.id === undefined ? undefined : pending.get(r.id);
  if (done) {
    pending.delete(r.id!);
    done(r);
  }
});

/** One A query; its answer, or undefined after TIMEOUT_MS. */
function query(name: string): Promise<dnsPacket.DecodedPacket | undefined> {
  const id = nextId;
  nextId = (nextId % 65535) + 1;
  const buf = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      resolve(undefined);
    }, TIMEOUT_MS);
    pending.set(id, (r) => {
      clearTimeout(timer);
      resolve(r);
    });
    sock.send(buf, 53, server);
  });
}

const addrsOf = (r: dnsPacket.DecodedPacket) =>
  (r.answers ?? []).filter((a) => a.type === 'A').map((a) => String((a as { data: unknown }).data)).sort();

if (mode === 'latency') {
  const count = Number(rest[0]);
  const names = rest.slice(1);
  const ms: number[] = [];
  const rcodes: Record<string, number> = {};
  let timeouts = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const r = await query(names[i % names.length]!);
    if (!r) {
      timeouts++;
      continue;
    }
    ms.push(performance.now() - t0);
    // decode() names the response code (NOERROR, NXDOMAIN...); the typings lack it.
    const rcode = (r as { rcode?: string }).rcode ?? '?';
    rcodes[rcode] = (rcodes[rcode] ?? 0) + 1;
  }
  console.log(JSON.stringify({ ms, timeouts, rcodes }));
  sock.close();
} else {
  const [name, interval] = rest;
  let last = '';
  let stop = false;
  process.stdin.on('close', () => (stop = true)).on('end', () => (stop = true)).resume();
  while (!stop) {
    const t0 = Date.now();
    const r = await query(name!);
    if (r) {
      const addrs = addrsOf(r);
      if (addrs.join() !== last) {
        last = addrs.join();
        console.log(JSON.stringify({ t: Date.now(), addrs }));
      }
    }
    await new Promise((res) => setTimeout(res, Math.max(0, Number(interval) - (Date.now() - t0))));
  }
  sock.close();
}
