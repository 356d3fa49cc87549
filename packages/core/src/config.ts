import { z } from 'zod';

/** Thrown for a bad environment variable; the message names it and says what was expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses environment variables with a zod object schema whose keys are the variable names.
 * Libraries never read process.env; apps call this once at start with process.env.
 */
export function parseEnv<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const variable = issue.path.join('.') || '(environment)';
    const value = typeof issue.path[0] === 'string' ? env[issue.path[0]] : undefined;
    const shown = value === undefined ? '' : ` (got ${JSON.stringify(redact(value))})`;
    return `${variable}: ${issue.message}${shown}`;
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}

/** Hides a password in a URL so an error message never prints a secret. */
export function redact(value: string): string {
  return value.replace(/\/\/([^:/@]+):([^@/]+)@/, '//$1:***@');
}

/** A URL variable restricted to some schemes, e.g. urlVariable(['redis:', 'rediss:']). */
export function urlVariable(protocols: readonly string[]) {
  return z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );
}

/** A positive integer variable given as a string, with a default. */
export function intVariable(defaultValue: number, min = 1, max = Number.MAX_SAFE_INTEGER) {
  return z.coerce.number().int().min(min).max(max).default(defaultValue);
}
