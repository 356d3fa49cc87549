export * from './config';
export * from './job-recorder';
export * from './memory-state-store';
export * from './probe-server';
export * from './run-worker';
export * from './runtime';
export * from './storage';
export * from './worker-heartbeat';
