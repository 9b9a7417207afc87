// The cluster's event feed (`shoal events`): store changes as docker-style events, each manager's
// journal of the recent ones, and the control API's Events stream served from it.
export * from './cluster-event.js';
export * from './event-filter.js';
export * from './journal.js';
export * from './events-stream.js';
