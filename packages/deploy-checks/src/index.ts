export * from './compose';
export * from './env-names';
