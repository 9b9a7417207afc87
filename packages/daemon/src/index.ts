export * from './daemon.js';
export * from './node-state.js';
