// `shoal ui [-q]`: a one-time login link to the web dashboard of the manager the CLI talks to
// (served by a shoald started with --ui-addr). The link works once, for a few minutes: the page
// trades it for a session cookie.

import type { Argv } from 'yargs';
import type { Ctx } from '../context.js';
import { type Args, type CtxFactory, action } from './common.js';

async function ui(ctx: Ctx, a: Args): Promise<void> {
  const { url, expiresAtMs } = await ctx.call('CreateUiLogin', {});
  if (a['quiet'] === true) {
    ctx.print(url);
    return;
  }
  const until = new Date(Number(expiresAtMs)).toLocaleTimeString();
  ctx.print(`Open the dashboard with this link (it works once, until ${until}):\n\n    ${url}\n\nThe page is served with the cluster's certificate: trust its CA (ca.pem of the admin directory) or accept the warning.`);
}

export function uiCommand(make: CtxFactory) {
  return {
    command: 'ui',
    describe: 'Print a one-time login link to the web dashboard of the manager (shoald --ui-addr)',
    builder: (y: Argv) =>
      y.usage('Usage: shoal ui [OPTIONS]').option('quiet', { alias: 'q', type: 'boolean', describe: 'Print the link alone' }),
    handler: action(make, ui),
  };
}
