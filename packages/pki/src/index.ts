export * from './names.js';
export * from './ca.js';
export * from './credentials.js';
export * from './peer.js';
export * from './pin.js';
export * from './identity.js';
