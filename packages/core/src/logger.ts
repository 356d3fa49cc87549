import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** A JSON logger for an app's entry point; libraries take one as a dependency. */
export function createLogger(name: string, level: string = 'info'): Logger {
  return pino({ name, level });
}

/** A logger that writes nothing, the default in tests and libraries. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
