// Small network probes for the routing-mesh suites.
import * as net from 'node:net';

export type ProbeResult = 'open' | 'refused' | 'closed' | 'timeout';

/**
 * How a TCP connect to host:port ends: 'open' (a backend answers an HTTP request), 'refused',
 * 'closed' (accepted then closed at once, or reset) or 'timeout' (nothing within 3 s).
 */
export function probe(host: string, port: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => done('timeout'), 3_000);
    const done = (r: ProbeResult) => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    s.once('connect', () => {
      s.write('GET / HTTP/1.0\r\n\r\n');
      s.once('data', () => done('open'));
      s.once('end', () => done('closed'));
    });
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'closed'));
  });
}
