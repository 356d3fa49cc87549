export { type ApiConfig, apiEnvSchema, loadApiConfig } from './config';
export { hashJson, stableStringify } from './enqueue';
export { type ImageFormat, sniffImage } from './image-sniff';
export { HttpProblem } from './problem';
export { type ApiDeps, createServer } from './server';
