// @shoal/lab: `shoal lab`, a cluster of real hosts on one machine (see README.md).
export { Lab } from './lab.js';
export type { DownResult, LabNode, LabOptions, UpOptions } from './lab.js';
export type { ExecOptions, ExecResult, Sink } from './engine.js';
export { DEFAULT_IMAGE, DEFAULT_LAB, MAX_MANAGERS, MAX_WORKERS, checkLabName, nodeNames, parseNodeName } from './names.js';
export { labsDir } from './state-dir.js';
// The class of its errors, for the CLI to tell them from others (loaded with this package).
export { ShoalError } from '@shoal/api';
