export { domainOf, type EmailWorkerConfig, emailWorkerEnvSchema, loadEmailWorkerConfig } from './config';
export {
  classifySmtpError,
  createEmailHandler,
  type EmailJobResult,
  SMTP_TEMPORARY_RETRY_MS,
} from './handler';
export { buildMessage, type MessageOptions, messageIdFor } from './message';
export { renderTemplate, templates } from './templates';
export { createOutboxTransport, createSmtpTransport, type MailTransport, type SendResult } from './transport';
export { runEmailWorker, transportFor } from './worker';
