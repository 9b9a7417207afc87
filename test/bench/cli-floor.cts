// node test/dist/bench/cli-floor.cjs load | call UNIX_SOCKET: what any `shoal` command that talks to a
// manager pays whatever the CLI does, for bench:cli to set next to `shoal service ls`:
// - load: Node's start, then the CLI bundle's gRPC client chunk (grpc-js, protobufjs, the .proto
//   loader) loaded as `shoal` loads it (bin/load-bundle.js, with its code cache); nothing else.
// - call: that, then the control client made (control.proto's embedded descriptor) and one
//   ListServices call answered: no yargs, no table, no output.
// CommonJS, as bin/shoal.js is (Node starts an ES module entry later). Needs `npm run build`.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const CLI = join(__dirname, '../../../packages/cli');
const BUNDLE = join(CLI, 'dist/bundle');

interface ControlClientLike {
  call(method: string, req: object): Promise<unknown>;
  close(): void;
}
interface ClientChunk {
  ControlClient: new (host: { kind: 'unix'; path: string }, timeoutMs: number) => ControlClientLike;
}

async function floor(mode: string | undefined, socket: string | undefined): Promise<void> {
  const { BundleLoader } = require(join(CLI, 'bin/load-bundle.js')) as { BundleLoader: new () => { load(file: string): unknown } };
  const chunk = readdirSync(BUNDLE).find((f) => /^client-.*\.cjs$/.test(f));
  if (!chunk) throw new Error(`no gRPC client chunk in ${BUNDLE}: npm run build`);
  const { ControlClient } = new BundleLoader().load(join(BUNDLE, chunk)) as ClientChunk;
  if (mode === 'load') return;
  if (mode !== 'call' || !socket) throw new Error('usage: cli-floor.cjs load | call UNIX_SOCKET');
  const client = new ControlClient({ kind: 'unix', path: socket }, 10_000);
  await client.call('ListServices', {});
  client.close();
}

floor(process.argv[2], process.argv[3]).catch((err: unknown) => {
  process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
