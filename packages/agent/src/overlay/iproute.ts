// The kernel's network configuration through iproute2 (`ip`, `bridge`), run as child processes.
//
// Why not netlink from Node: npm has no well-kept netlink library (the few that exist are native
// addons without releases for years), while iproute2 is on every node, speaks netlink itself, and
// prints JSON (`-j`) that we parse into typed records. Every command can run in a named network
// namespace (`-n NS`), which is how the tests stand several hosts on one machine; each command run
// is reported to an optional observer, so a caller (or a test) can see what a converge changed.

import { execFile } from 'node:child_process';
import { ShoalError } from '@shoal/api';

export type Tool = 'ip' | 'bridge';

export interface IprouteOptions {
  /** Run every command in this named network namespace (`ip -n NS`); the current one if absent. */
  readonly netns?: string;
  /** Told of every command run (tool and arguments, without the namespace prefix). */
  readonly onCommand?: (tool: Tool, args: readonly string[]) => void;
}

export class Iproute {
  constructor(private readonly opts: IprouteOptions = {}) {}

  /** The same commands in another namespace (an endpoint's), reported to the same observer. */
  in(netns: string): Iproute {
    return new Iproute({ ...this.opts, netns });
  }

  /** Runs a command that changes something; fails with a one-line ShoalError. */
  async run(tool: Tool, args: readonly string[]): Promise<string> {
    this.opts.onCommand?.(tool, args);
    return this.exec(tool, args);
  }

  /** Runs a read-only `-j` command and parses its JSON; a missing device reads as []. */
  async query<T>(tool: Tool, args: readonly string[]): Promise<T[]> {
    let out: string;
    try {
      out = await this.exec(tool, ['-j', ...args]);
    } catch (err) {
      if (err instanceof ShoalError && /does not exist|Cannot find device/.test(err.message)) return [];
      throw err;
    }
    const text = out.trim();
    return text === '' ? [] : (JSON.parse(text) as T[]);
  }

  private exec(tool: Tool, args: readonly string[]): Promise<string> {
    const full = this.opts.netns === undefined ? [...args] : ['-n', this.opts.netns, ...args];
    return new Promise((resolve, reject) => {
      execFile(tool, full, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err === null) return resolve(stdout);
        const why = (stderr.trim() || err.message).split('\n')[0];
        const where = this.opts.netns === undefined ? '' : ` (netns ${this.opts.netns})`;
        reject(new ShoalError('INTERNAL', `${tool} ${args.join(' ')}${where}: ${why}`));
      });
    });
  }
}

/** `ip -j -d link show` as far as we read it. */
export interface LinkInfo {
  readonly ifname: string;
  readonly mtu: number;
  readonly master?: string;
  readonly address?: string;
  readonly operstate?: string;
  readonly flags?: readonly string[];
  readonly linkinfo?: {
    readonly info_kind?: string;
    readonly info_data?: {
      readonly id?: number;
      readonly local?: string;
      readonly port?: number;
      readonly learning?: boolean;
      readonly proxy?: boolean;
    };
  };
}
