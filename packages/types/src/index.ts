// @shoal/types: the cluster's objects and the rules of a service spec, in one place for the
// control API, the store, the CLI and the agent (none of which needs another's code for them).
export * from './objects.js';
export * from './enums.js';
export * from './check.js';
export * from './spec-error.js';
export * from './duration.js';
export * from './service-spec.js';
export * from './container-spec.js';
export * from './cluster-settings.js';
export type * from './control.js';
export * from './network-spec.js';
export * from './network-address.js';
export * from './network-view.js';
export * from './image-ref.js';
export * from './mesh-view.js';
export * from './secret-spec.js';
export * from './session-timing.js';
