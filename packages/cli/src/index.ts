// @shoal/cli: the `shoal` command line. The pure pieces (flag parsers, spec building, output
// formats) are exported for tests and other tools.

export * from './cli.js';
export * from './client.js';
export * from './context.js';
export * from './errors.js';
export * from './format.js';
export * from './parse.js';
export * from './progress.js';
export * from './spec.js';
export * from './wait.js';
