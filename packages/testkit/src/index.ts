export * from './conformance';
export * from './consumers';
export * from './seed-corpus';
export * from './spy';
export * from './state-store-suite';
