export * from './queue-controls-registry';
export * from './registry';
export * from './state-registry';
