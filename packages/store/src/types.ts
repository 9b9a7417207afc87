// The store's objects are the cluster's domain types (@shoal/types), re-exported so the
// manager's components keep one import for the store and what it holds.
export * from '@shoal/types';
