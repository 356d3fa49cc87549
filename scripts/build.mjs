#!/usr/bin/env node
/**
 * `npm run build`: compiles each service into one ESM bundle that plain `node` runs, without
 * tsx: apps/<app>/dist/main.js (+ its chunks and source maps).
 *
 *   node scripts/build.mjs [app ...]              build these apps (default: all four)
 *   node scripts/build.mjs --if-stale [app ...]   only those whose bundle is missing or older
 *                                                 than one of its inputs (what `npm start` runs)
 *
 * What goes in a bundle: the app's sources and the @polyqueue/* workspace sources it imports
 * (packages export ./src/index.ts, which vitest and tsx use in development). Every npm package
 * stays an import resolved from node_modules at run time, so native modules (better-sqlite3,
 * sharp) load as installed and `npm ci --omit=dev` is the whole run-time install.
 *
 * Code splitting keeps the brokers lazy: the registry's `import('@polyqueue/broker-kafka')` ...
 * becomes a chunk of its own, so a service loads kafkajs, amqplib or the AWS SDK only for the
 * broker it runs with (one bundle file would import every driver's client at start-up).
 *
 * The api bundle has a second entry, docker/wait-for-broker.ts (the compose demo's start gate,
 * run from the api image): apps/api/dist/wait-for-broker.js.
 *
 * No type check here (esbuild strips types): `npm run typecheck` is the type check.
 * The staleness check reads the inputs esbuild recorded in dist/meta.json.
 */
import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Each app and its entry points (output name -> source, relative to the repository root). */
const apps = {
  api: { main: 'apps/api/src/main.ts', 'wait-for-broker': 'docker/wait-for-broker.ts' },
  'email-worker': { main: 'apps/email-worker/src/main.ts' },
  'image-worker': { main: 'apps/image-worker/src/main.ts' },
  cli: { main: 'apps/cli/src/main.ts' },
};

/**
 * Files a bundle reads at run time next to itself: broker-redis loads its Lua scripts from
 * `new URL('./lua/', import.meta.url)`, which in a bundle is dist/lua/; the API serves its
 * dashboard from `new URL('./dashboard/', import.meta.url)`, dist/dashboard/. `apps` limits an
 * asset to the apps that read it (absent: every app).
 */
const assets = [
  { from: 'packages/broker-redis/src/lua', to: 'lua' },
  { from: 'apps/api/src/dashboard', to: 'dashboard', apps: ['api'] },
];
const assetsOf = (app) => assets.filter((asset) => !asset.apps || asset.apps.includes(app));

const args = process.argv.slice(2);
const ifStale = args.includes('--if-stale');
const names = args.filter((a) => !a.startsWith('--'));
for (const name of names) {
  if (!(name in apps)) {
    process.stderr.write(`build: no app named ${name} (apps: ${Object.keys(apps).join(', ')})\n`);
    process.exit(2);
  }
}
const selected = names.length > 0 ? names : Object.keys(apps);
const todo = ifStale ? selected.filter(isStale) : selected;
if (todo.length === 0) process.exit(0);

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('build: esbuild is not installed (a devDependency): run `npm install` first\n');
  process.exit(1);
}

const started = performance.now();
await Promise.all(todo.map(build));
const ms = Math.round(performance.now() - started);
// On stderr: `npm run -s polyqueue -- stats --json` keeps its stdout for the command's output.
process.stderr.write(`build: ${todo.map((a) => `apps/${a}/dist`).join(', ')} in ${ms} ms\n`);

/**
 * Builds into a sibling directory and swaps it in with two renames: a service starting (or
 * lazily importing a broker's chunk) while another shell rebuilds never reads a half-written
 * file.
 */
async function build(app) {
  const dist = join(root, 'apps', app, 'dist');
  const outdir = join(root, 'apps', app, `.dist-${process.pid}`);
  const old = join(root, 'apps', app, `.dist-old-${process.pid}`);
  rmSync(outdir, { recursive: true, force: true });
  // The sources' times are compared with this one: a file saved during the build is newer.
  const startedAt = new Date();
  const entryPoints = Object.entries(apps[app]).map(([out, src]) => ({ out, in: join(root, src) }));
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    // Bundle our workspace packages, leave every npm package to node_modules.
    plugins: [externalNpmPackages()],
  });
  writeFileSync(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
  for (const asset of assetsOf(app))
    cpSync(join(root, asset.from), join(outdir, asset.to), { recursive: true });
  // The CLI's source starts with `#!/usr/bin/env -S node --import tsx` (run from source);
  // its bundle runs with plain node.
  const main = join(outdir, 'main.js');
  const text = readFileSync(main, 'utf8');
  if (text.startsWith('#!')) writeFileSync(main, `#!/usr/bin/env node${text.slice(text.indexOf('\n'))}`);
  utimesSync(join(outdir, 'meta.json'), startedAt, startedAt);
  if (existsSync(dist)) renameSync(dist, old);
  renameSync(outdir, dist);
  rmSync(old, { recursive: true, force: true });
}

/** Bare imports outside @polyqueue/* (npm packages and node: builtins) stay imports. */
function externalNpmPackages() {
  return {
    name: 'external-npm-packages',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith('@polyqueue/')) return undefined;
        return { path: args.path, external: true };
      });
    },
  };
}

/** The bundle is missing, or one of the files it was built from (or an asset) is newer. */
function isStale(app) {
  const outdir = join(root, 'apps', app, 'dist');
  const metaFile = join(outdir, 'meta.json');
  if (!existsSync(join(outdir, 'main.js')) || !existsSync(metaFile)) return true;
  const builtAt = statSync(metaFile).mtimeMs;
  let inputs;
  try {
    inputs = Object.keys(JSON.parse(readFileSync(metaFile, 'utf8')).inputs);
  } catch {
    return true;
  }
  // A new entry point or asset, or a file the last build did not see (a new import is caught
  // because the file importing it changed).
  for (const src of Object.values(apps[app])) inputs.push(src);
  for (const asset of assetsOf(app)) {
    inputs.push(asset.from); // its mtime changes when a file is added or removed
    for (const file of readdirSync(join(root, asset.from))) inputs.push(join(asset.from, file));
  }
  inputs.push('scripts/build.mjs', 'package-lock.json');
  return inputs.some((input) => {
    try {
      return statSync(join(root, input)).mtimeMs > builtAt;
    } catch {
      return true; // deleted or renamed: build again
    }
  });
}
