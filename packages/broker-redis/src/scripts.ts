import { readdirSync, readFileSync } from 'node:fs';
import type { RedisClient } from './connection';

/**
 * The Lua scripts in ./lua, named `<name>-<numKeys>.lua` (as BullMQ does), each opening with a
 * comment listing its KEYS and ARGV. They are registered on a connection with defineCommand,
 * which runs EVALSHA and falls back to EVAL after a server restart flushed the script cache.
 */
export type ScriptName =
  | 'promote-delayed'
  | 'promote-delayed-stream'
  | 'fetch-reliable'
  | 'settle-reliable'
  | 'recover-leases'
  | 'drop-consumer'
  | 'settle-stream'
  | 'reclaim-stream'
  | 'redrive'
  | 'admit-limited'
  | 'renew-limited';

interface Script {
  command: string;
  numberOfKeys: number;
  lua: string;
}

const directory = new URL('./lua/', import.meta.url);

const scripts: Map<string, Script> = new Map(
  readdirSync(directory)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => {
      const match = /^(.+)-(\d+)\.lua$/.exec(file);
      if (!match) throw new Error(`Lua script ${file} is not named <name>-<numKeys>.lua`);
      const name = match[1]!;
      const script = {
        command: `pq_${name.replace(/-/g, '_')}`,
        numberOfKeys: Number(match[2]),
        lua: readFileSync(new URL(file, directory), 'utf8'),
      };
      return [name, script] as const;
    }),
);

export function defineScripts(redis: RedisClient): void {
  for (const script of scripts.values()) {
    redis.defineCommand(script.command, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
}

/** Runs one script; the number of keys must match its file name. */
export function runScript(
  redis: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
) {
  const script = scripts.get(name);
  if (!script) throw new Error(`no Lua script named ${name}`);
  if (keys.length !== script.numberOfKeys) {
    throw new Error(`Lua script ${name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
  }
  const command = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[
    script.command
  ];
  if (!command) throw new Error(`Lua script ${name} is not defined on this connection`);
  return command.call(redis, ...keys, ...args);
}

/** A script's command bound to one connection: its KEYS then its ARGV, as positional arguments. */
export type ScriptCommand = (...keysThenArgs: (string | number)[]) => Promise<unknown>;

/**
 * The script's command bound to redis, for the per-job paths (settle, fetch): called with
 * positional arguments, it skips runScript's key and argument arrays. The caller passes
 * exactly the number of keys the file name says.
 */
export function scriptCommand(redis: RedisClient, name: ScriptName): ScriptCommand {
  const script = scripts.get(name);
  if (!script) throw new Error(`no Lua script named ${name}`);
  const command = (redis as unknown as Record<string, ScriptCommand | undefined>)[script.command];
  if (!command) throw new Error(`Lua script ${name} is not defined on this connection`);
  return command.bind(redis);
}
