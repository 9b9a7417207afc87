// What `shoal lab env` prints: a line for the shell that points every `shoal` command at the lab's
// managers (all of them: the CLI goes on to the next when one does not answer) with its admin
// certificate, and names its registry (SHOAL_LAB_REGISTRY: where `lab load`'s images are, for
// references such as `$SHOAL_LAB_REGISTRY/busybox:latest`).

import { CONTROL_PORT } from './names.js';

/** A word for a POSIX shell: as is when it is safe so, else in single quotes. */
export function shellWord(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * `export SHOAL_HOST=IP1:4242,IP2:4242 SHOAL_CERT_PATH=DIR SHOAL_LAB_REGISTRY=ADDR:5000` for these
 * managers' addresses (the registry's when the lab has one).
 */
export function envLine(managerIps: readonly string[], certPath: string, registry?: string): string {
  const hosts = managerIps.map((ip) => `${ip}:${CONTROL_PORT}`).join(',');
  const line = `export SHOAL_HOST=${shellWord(hosts)} SHOAL_CERT_PATH=${shellWord(certPath)}`;
  return registry === undefined ? line : `${line} SHOAL_LAB_REGISTRY=${shellWord(registry)}`;
}
