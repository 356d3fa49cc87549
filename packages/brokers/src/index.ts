export * from './registry';
export * from './state-registry';
