// Registry credentials on their way to the engine (`--with-registry-auth`): a pull of a task's
// image, and a manager pinning an image to its digest, hand Docker an AuthConfig, which dockerode
// sends as the X-Registry-Auth header. docker-modem also formats every request's options with
// util.inspect for its debug log (DEBUG=modem): the object given here describes itself without
// its fields, so that log never shows the credentials either.

import { inspect } from 'node:util';
import type Docker from 'dockerode';

/** Docker's AuthConfig JSON (as the dispatcher sends it) as dockerode's `authconfig`. */
export function engineAuthConfig(json: string): Docker.AuthConfig {
  const auth = JSON.parse(json) as Docker.AuthConfig;
  // A symbol key: JSON.stringify (the header) skips it; util.inspect (the debug log) uses it.
  Object.defineProperty(auth, inspect.custom, { value: () => '[registry credentials]', enumerable: false });
  return auth;
}
