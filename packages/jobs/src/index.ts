export * from './catalogue';
export * from './process-image';
export * from './send-email';
