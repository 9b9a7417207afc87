// Validation at the edge: every spec that enters the control API is completed with Swarm's
// defaults and checked against the spec's rules (@shoal/types service-spec.ts, the same rules
// the CLI applies before it sends). A bad field gives one clear INVALID_ARGUMENT line; nothing
// is proposed to Raft.

import { ShoalError } from '@shoal/api';
import { type CompleteOptions, type ServiceSpec, type SpecInput, SpecError, completeServiceSpec } from '@shoal/types';

/** Checks a service spec from a client and fills in the defaults; a broken rule is INVALID_ARGUMENT. */
export function validateServiceSpec(input: SpecInput | null | undefined, opts?: CompleteOptions): ServiceSpec {
  try {
    return completeServiceSpec(input, opts);
  } catch (err) {
    if (err instanceof SpecError) throw new ShoalError('INVALID_ARGUMENT', err.message);
    throw err;
  }
}
