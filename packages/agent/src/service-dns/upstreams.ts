// Where names outside the cluster go: the resolvers given, or the node's own (resolv.conf).

import { isIP } from 'node:net';
import { ShoalError } from '@shoal/api';

export interface Upstream {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** resolv.conf's limit (MAXNS), and Docker's (maxExtDNS): more would only lengthen a failure. */
export const MAX_UPSTREAMS = 3;

/** `1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]:5353` (port 53 when none). */
export function parseUpstream(spec: string): Upstream {
  let host = spec;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (spec.indexOf(':') !== -1 && spec.indexOf(':') === spec.lastIndexOf(':')) {
    host = spec.slice(0, spec.indexOf(':'));
    port = Number(spec.slice(spec.indexOf(':') + 1));
  }
  const family = isIP(host.split('%')[0]!);
  if ((family !== 4 && family !== 6) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ShoalError('INVALID_ARGUMENT', `service DNS: not a resolver address: ${JSON.stringify(spec)}`);
  }
  return { host, port, family };
}

/** The `nameserver` lines of a resolv.conf, in order, at most MAX_UPSTREAMS; unusable lines skipped. */
export function parseResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const words = line.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (words[0] !== 'nameserver' || words[1] === undefined) continue;
    // resolv.conf has no port syntax: a colon there is an IPv6 address's.
    const family = isIP(words[1].split('%')[0]!);
    if (family !== 4 && family !== 6) continue;
    out.push({ host: words[1], port: 53, family });
    if (out.length === MAX_UPSTREAMS) break;
  }
  return out;
}
