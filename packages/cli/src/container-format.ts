// The container's settings in `service inspect`'s text (as docker's --pretty lists them): only
// those set, under ContainerSpec, one `Key: value` per line.

import type { Mount, ServiceSpec } from '@shoal/types';
import { bytesText } from './format.js';

function mountLines(m: Mount): string[] {
  const out = [`  Target = ${m.target}`, `   Source = ${m.source || '(anonymous)'}`, `   ReadOnly = ${m.readOnly}`, `   Type = ${m.type}`];
  const vo = m.volumeOptions;
  if (vo?.driver) out.push(`   Driver = ${vo.driver}`);
  for (const [k, v] of Object.entries(vo?.driverOptions ?? {})) out.push(`   Option ${k} = ${v}`);
  for (const [k, v] of Object.entries(vo?.labels ?? {})) out.push(`   Label ${k} = ${v}`);
  if (vo?.noCopy) out.push('   NoCopy = true');
  if (m.tmpfsOptions?.sizeBytes) out.push(`   Size = ${bytesText(m.tmpfsOptions.sizeBytes)}`);
  if (m.tmpfsOptions?.mode) out.push(`   Mode = ${m.tmpfsOptions.mode.toString(8)}`);
  if (m.bindPropagation) out.push(`   Propagation = ${m.bindPropagation}`);
  return out;
}

/** The lines of the container settings a spec sets (none for a spec that sets none). */
export function containerInspectLines(spec: ServiceSpec): string[] {
  const lines: string[] = [];
  const kv = (k: string, v: string | number | boolean): void => void lines.push(`${` ${k}:`.padEnd(22)}${v}`);
  const list = (title: string, xs: readonly string[]): void => {
    if (xs.length === 0) return;
    lines.push(` ${title}:`);
    for (const x of xs) lines.push(`  ${x}`);
  };
  if (spec.entrypoint?.length) kv('Entrypoint', JSON.stringify(spec.entrypoint));
  if (spec.user) kv('User', spec.user);
  if (spec.hostname) kv('Hostname', spec.hostname);
  if (spec.init) kv('Init', true);
  if (spec.readOnly) kv('Read only', true);
  if (spec.tty) kv('TTY', true);
  if (spec.stopSignal) kv('Stop signal', spec.stopSignal);
  list('Capability Add', spec.capAdd ?? []);
  list('Capability Drop', spec.capDrop ?? []);
  list('Sysctls', Object.entries(spec.sysctls ?? {}).map(([k, v]) => `${k}=${v}`));
  list('Ulimits', (spec.ulimits ?? []).map((u) => `${u.name}=${u.soft}:${u.hard}`));
  list('Labels', Object.entries(spec.containerLabels ?? {}).map(([k, v]) => `${k}=${v}`));
  const dns = spec.dnsConfig;
  if (dns) {
    lines.push(' DNS:');
    if (dns.nameservers.length) lines.push(`  Nameservers = ${dns.nameservers.join(', ')}`);
    if (dns.search.length) lines.push(`  Search = ${dns.search.join(', ')}`);
    if (dns.options.length) lines.push(`  Options = ${dns.options.join(', ')}`);
  }
  if (spec.logDriver) {
    lines.push(' Log Driver:');
    lines.push(`  Name = ${spec.logDriver.name}`);
    for (const [k, v] of Object.entries(spec.logDriver.options)) lines.push(`  ${k} = ${v}`);
  }
  if (spec.mounts?.length) {
    lines.push(' Mounts:');
    for (const m of spec.mounts) lines.push(...mountLines(m));
  }
  return lines;
}
