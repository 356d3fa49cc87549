export * from './conformance';
export * from './consumers';
export * from './driver-broker';
export * from './local-servers';
export * from './queue-controls-suite';
export * from './seed-corpus';
export * from './spy';
export * from './state-store-suite';
