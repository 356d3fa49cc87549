import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';

/** A path that would leave the storage root (../, an absolute path, a NUL byte, a symlink out). */
export class PathEscapeError extends Error {
  override name = 'PathEscapeError';
}

/**
 * The absolute path of `relativePath` under `root`, or a PathEscapeError. Checked on the
 * lexical path first (`..`, absolute, NUL) so nothing outside the root is ever touched.
 */
export function resolveInStorage(root: string, relativePath: string): string {
  if (relativePath.includes('\0'))
    throw new PathEscapeError(`path ${JSON.stringify(relativePath)} contains a NUL byte`);
  if (isAbsolute(relativePath) || /^[a-zA-Z]:/.test(relativePath)) {
    throw new PathEscapeError(`path ${JSON.stringify(relativePath)} must be relative to the storage root`);
  }
  const base = resolve(root);
  const full = resolve(base, relativePath);
  if (!isInside(base, full))
    throw new PathEscapeError(`path ${JSON.stringify(relativePath)} leaves the storage root`);
  return full;
}

/**
 * Like resolveInStorage, and also follows symlinks: a link inside the root that points outside
 * it is refused. The file must exist (realpath fails with ENOENT otherwise).
 */
export async function resolveExistingInStorage(root: string, relativePath: string): Promise<string> {
  const full = resolveInStorage(root, relativePath);
  const [realRoot, realFull] = await Promise.all([realpath(resolve(root)), realpath(full)]);
  if (!isInside(realRoot, realFull)) {
    throw new PathEscapeError(`path ${JSON.stringify(relativePath)} resolves outside the storage root`);
  }
  return realFull;
}

function isInside(base: string, full: string): boolean {
  const rel = relative(base, full);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
}
