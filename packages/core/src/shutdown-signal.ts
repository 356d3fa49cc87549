import type { Logger } from 'pino';
import { silentLogger } from './logger';

/**
 * An AbortSignal that aborts on SIGTERM or SIGINT, for an app's entry point. A second signal
 * exits at once, for an operator who does not want to wait for the drain.
 */
export function shutdownSignal(logger: Logger = silentLogger()): AbortSignal {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      logger.warn({ signal: name }, 'second signal: exiting without draining');
      process.exit(130);
    }
    logger.info({ signal: name }, 'draining in-flight jobs, then exiting');
    controller.abort(new Error(name));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return controller.signal;
}
