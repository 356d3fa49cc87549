// Each app's config module only (its package's ./config export): the checks read the schemas the
// apps parse their environment with, without loading express, nodemailer or sharp.
import { apiEnvSchema, loadApiConfig } from '@polyqueue/api/config';
import { runtimeEnvShape } from '@polyqueue/app-runtime';
import { brokerNames, loadDriver } from '@polyqueue/brokers';
import type { BrokerDriver } from '@polyqueue/core';
import { emailWorkerEnvSchema, loadEmailWorkerConfig } from '@polyqueue/email-worker/config';
import { imageWorkerEnvSchema, loadImageWorkerConfig } from '@polyqueue/image-worker/config';
import { z } from 'zod';

/**
 * The environment variables each polyqueue process parses, read from the zod schemas the code
 * itself uses, so a compose variable the code does not know (a typo, a renamed variable) fails a
 * test instead of being silently ignored at run time.
 */

/** The services compose runs from this repository's images, and the schema each one parses. */
export const appSchemas = {
  api: apiEnvSchema,
  'email-worker': emailWorkerEnvSchema,
  'image-worker': imageWorkerEnvSchema,
} as const;

export type AppService = keyof typeof appSchemas;

/** How each service's main.ts parses its environment (the schema, plus empty-means-unset rules). */
export const appLoaders: Record<AppService, (env: Record<string, string | undefined>) => unknown> = {
  api: loadApiConfig,
  'email-worker': loadEmailWorkerConfig,
  'image-worker': loadImageWorkerConfig,
};
export const appServices = Object.keys(appSchemas) as AppService[];

/** Read by the runtime under the code rather than by a schema. */
export const platformVariables: Record<string, string> = {
  NODE_ENV: 'Node and libraries (production in the image)',
  UV_THREADPOOL_SIZE: "libuv's thread pool, sized before the code runs",
};

/** The variable names of a zod object schema. */
export function variableNames(schema: z.ZodType): string[] {
  if (!(schema instanceof z.ZodObject))
    throw new Error('an env schema must be a z.object over variable names');
  return Object.keys(schema.shape);
}

/** Every driver, by BROKER name. */
export async function loadDrivers(): Promise<Map<string, BrokerDriver>> {
  const drivers = new Map<string, BrokerDriver>();
  for (const name of brokerNames) drivers.set(name, await loadDriver(name));
  return drivers;
}

/** Variable name -> the BROKER names whose driver reads it. */
export function driverVariables(drivers: Map<string, BrokerDriver>): Map<string, string[]> {
  const byName = new Map<string, string[]>();
  for (const [broker, driver] of drivers) {
    for (const variable of variableNames(driver.envSchema))
      byName.set(variable, [...(byName.get(variable) ?? []), broker]);
  }
  return byName;
}

/** What a polyqueue process reads besides its own schema: BROKER's driver and the common runtime. */
export function sharedVariables(drivers: Map<string, BrokerDriver>): Set<string> {
  return new Set([...Object.keys(runtimeEnvShape), ...driverVariables(drivers).keys()]);
}

/** The variables every process reads through the common runtime (BROKER, STATE_URL, ...). */
export function runtimeVariables(): string[] {
  return Object.keys(runtimeEnvShape);
}
