export * from './executor.js';
export { DockerExecutor, DEFAULT_DOCKER_SOCKET, normalizeImageRef } from './docker-executor.js';
export type { DockerExecutorOptions, ExecutorLogger } from './docker-executor.js';
export { TaskRunner } from './runner.js';
export type { DispatcherLink, StatusUpdate, RunnerLogger } from './runner.js';
