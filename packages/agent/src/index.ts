export * from './executor.js';
export { DockerExecutor, DEFAULT_DOCKER_SOCKET, normalizeImageRef } from './docker-executor.js';
export type { DockerExecutorOptions, ExecutorLogger } from './docker-executor.js';
export { TaskRunner } from './runner.js';
export type { DispatcherLink, LogAnswer, LogRequest, MeshView, StatusUpdate, RunnerLogger } from './runner.js';
export { LogShipper } from './log-shipper.js';
export { AgentSession } from './agent-session.js';
export type { SessionOptions, SessionLogger } from './agent-session.js';
export * from './docker-logs.js';
