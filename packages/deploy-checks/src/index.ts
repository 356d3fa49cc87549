export * from './compose';
export * from './env-names';
export * from './k8s';
