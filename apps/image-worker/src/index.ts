export { type ImageWorkerConfig, imageWorkerEnvSchema, loadImageWorkerConfig } from './config';
export { createImageHandler, type ImageHandlerOptions, type ImageJobResult } from './handler';
export { configureSharp } from './sharp-settings';
export { type MadeVariant, type MakeVariantsOptions, makeVariants } from './variants';
export { runImageWorker } from './worker';
