export * from './ca/root-ca.js';
export * from './ca/tokens.js';
export * from './manager.js';
export * from './membership.js';
export * from './grpc-util.js';
export * from './dispatcher/dispatcher.js';
export { validateServiceSpec, validatePorts } from './controlapi/validate.js';
