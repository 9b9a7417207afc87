// node test/dist/bench/cli-floor.js load | call UNIX_SOCKET: what any `shoal` command that talks to a
// manager pays whatever the CLI does, for bench:cli to set next to `shoal service ls`:
// - load: Node's start, then the CLI bundle's gRPC client chunk (grpc-js, protobufjs, the .proto
//   loader) loaded as `shoal` loads it (bin/load-bundle.js, with its code cache); nothing else.
// - call: that, then the control client made (control.proto's embedded descriptor) and one
//   ListServices call answered: no yargs, no table, no output.
// Needs a built bundle (npm run build).
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BUNDLE = fileURLToPath(new URL('../../../packages/cli/dist/bundle/', import.meta.url));
const LOADER = new URL('../../../packages/cli/bin/load-bundle.js', import.meta.url).href;

interface ControlClientLike {
  call(method: string, req: object): Promise<unknown>;
  close(): void;
}
interface ClientChunk {
  ControlClient: new (host: { kind: 'unix'; path: string }, timeoutMs: number) => ControlClientLike;
}

const [mode, socket] = process.argv.slice(2);
const { BundleLoader } = (await import(LOADER)) as { BundleLoader: new () => { load(file: string): unknown } };
const chunk = readdirSync(BUNDLE).find((f) => /^client-.*\.cjs$/.test(f));
if (!chunk) throw new Error(`no gRPC client chunk in ${BUNDLE}: npm run build`);
const { ControlClient } = new BundleLoader().load(BUNDLE + chunk) as ClientChunk;
if (mode === 'call') {
  if (!socket) throw new Error('usage: cli-floor.js call UNIX_SOCKET');
  const client = new ControlClient({ kind: 'unix', path: socket }, 10_000);
  await client.call('ListServices', {});
  client.close();
} else if (mode !== 'load') {
  throw new Error('usage: cli-floor.js load | call UNIX_SOCKET');
}
