// nftables and conntrack, run as child processes in a named network namespace (`ip netns exec NS`)
// or in the current one, as the overlay's Iproute runs iproute2.
//
// Why the command-line tools: as for iproute2, npm has no well-kept netlink library for nftables;
// `nft -f -` takes a whole ruleset on stdin and applies it as ONE kernel transaction (all or
// nothing, no packet sees half of it), and `nft -j` prints what is there as JSON. Every command that
// changes something is reported to an optional observer, so a caller (or a test) sees what changed.

import { execFile } from 'node:child_process';
import { ShoalError } from '@shoal/api';

export type NetfilterTool = 'nft' | 'conntrack' | 'iptables';

export interface NetfilterOptions {
  /** Run in this named network namespace; the current one if absent. */
  readonly netns?: string;
  /** Told of every changing command (tool, arguments, and the ruleset given on stdin, if any). */
  readonly onCommand?: (tool: NetfilterTool, args: readonly string[], stdin?: string) => void;
}

/** `nft -j list …`'s top level: a list of one-key objects (metainfo, table, set, chain, rule). */
export interface NftJson {
  readonly nftables: readonly Record<string, unknown>[];
}

interface Output {
  readonly stdout: string;
  readonly stderr: string;
  /** The exit code; 0 when it succeeded. */
  readonly code: number;
}

export class Netfilter {
  constructor(private readonly opts: NetfilterOptions = {}) {}

  get netns(): string | undefined {
    return this.opts.netns;
  }

  /** Applies `ruleset` as one transaction (`nft -f -`). */
  async transaction(ruleset: string): Promise<void> {
    this.opts.onCommand?.('nft', ['-f', '-'], ruleset);
    const out = await this.exec('nft', ['-f', '-'], ruleset);
    if (out.code !== 0) throw this.failure('nft', ['-f', '-'], out);
  }

  /** `nft -j list table FAMILY NAME`; undefined when there is no such table. */
  async listTable(family: string, name: string): Promise<NftJson | undefined> {
    const args = ['-j', 'list', 'table', family, name];
    const out = await this.exec('nft', args);
    if (out.code !== 0) {
      if (/No such file or directory/.test(out.stderr)) return undefined;
      throw this.failure('nft', args, out);
    }
    return JSON.parse(out.stdout) as NftJson;
  }

  /**
   * `conntrack -D` with the given filter; the number of entries it deleted. conntrack exits 1
   * when nothing matched, which is not an error here.
   */
  async deleteConntrack(filter: readonly string[]): Promise<number> {
    const args = ['-D', ...filter];
    this.opts.onCommand?.('conntrack', args);
    const out = await this.exec('conntrack', args);
    const m = /(\d+) flow entries have been deleted/.exec(out.stderr);
    if (m !== null && (out.code === 0 || out.code === 1)) return Number(m[1]);
    throw this.failure('conntrack', args, out);
  }

  /** `iptables ARGS`: its exit code (a rule or chain that is not there is not an error here). */
  async iptables(args: readonly string[], changes = true): Promise<number> {
    if (changes) this.opts.onCommand?.('iptables', args);
    const out = await this.exec('iptables', ['-w', '5', ...args]);
    return out.code;
  }

  private exec(tool: NetfilterTool, args: readonly string[], stdin?: string): Promise<Output> {
    const [file, full] = this.opts.netns === undefined ? [tool, [...args]] : ['ip', ['netns', 'exec', this.opts.netns, tool, ...args]];
    return new Promise((resolve, reject) => {
      const child = execFile(file, full, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err === null) return resolve({ stdout, stderr, code: 0 });
        const code = (err as { code?: unknown }).code;
        // A number is the tool's exit code; anything else (ENOENT, a signal) is a failure to run it.
        if (typeof code === 'number') return resolve({ stdout, stderr, code });
        reject(new ShoalError('INTERNAL', `${tool} ${args.join(' ')}${this.where()}: ${err.message.split('\n')[0]}`));
      });
      // A tool that exits without reading its input (a failure, or one that reads none) makes the
      // write fail with EPIPE: the exit code tells what happened, the write's error adds nothing.
      child.stdin?.on('error', () => undefined);
      if (stdin === undefined) child.stdin?.end();
      else child.stdin?.end(stdin);
    });
  }

  private where(): string {
    return this.opts.netns === undefined ? '' : ` (netns ${this.opts.netns})`;
  }

  private failure(tool: NetfilterTool, args: readonly string[], out: Output): ShoalError {
    const why = (out.stderr.trim() || `exit code ${out.code}`).split('\n')[0];
    return new ShoalError('INTERNAL', `${tool} ${args.join(' ')}${this.where()}: ${why}`);
  }
}
