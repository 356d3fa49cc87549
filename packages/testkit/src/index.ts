export * from './conformance';
export * from './consumers';
export * from './spy';
export * from './state-store-suite';
