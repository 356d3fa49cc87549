/**
 * `--rev <commit>`: run the services from a clean copy of one commit instead of the working
 * tree, so a measurement names exactly the code it measured even while others edit the tree.
 * The copy is `git archive <commit>` in the temp dir; its node_modules links every installed
 * package of this repo, except the workspace packages (@polyqueue/*), which point into the
 * copy: third-party code is shared, ours is not (the report notes a commit whose lock differs).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function snapshotOf(
  repoRoot: string,
  rev: string,
): { root: string; commit: string; lockDiffers: boolean } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).trim();
  const commit = git('rev-parse', '--short', `${rev}^{commit}`);
  const root = join(tmpdir(), `polyqueue-chaos-tree-${commit}`);
  // Third-party code comes from this repo's node_modules: say so when the commit locked other versions.
  const lockDiffers =
    git('rev-parse', `${rev}:package-lock.json`) !== git('hash-object', 'package-lock.json');
  if (existsSync(join(root, '.complete'))) return { root, commit, lockDiffers };
  mkdirSync(root, { recursive: true });
  execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C "${root}"`], { cwd: repoRoot });
  const modules = join(root, 'node_modules');
  mkdirSync(join(modules, '@polyqueue'), { recursive: true });
  for (const entry of readdirSync(join(repoRoot, 'node_modules'))) {
    if (entry === '@polyqueue') continue;
    symlinkSync(join(repoRoot, 'node_modules', entry), join(modules, entry));
  }
  // Workspace packages: @polyqueue/<name> -> the copy's apps/<name> or packages/<name>.
  for (const parent of ['apps', 'packages']) {
    for (const name of readdirSync(join(root, parent))) {
      const target = join(root, parent, name);
      if (existsSync(join(target, 'package.json'))) symlinkSync(target, join(modules, '@polyqueue', name));
      const own = join(repoRoot, parent, name, 'node_modules');
      if (existsSync(own) && !existsSync(join(target, 'node_modules'))) {
        symlinkSync(own, join(target, 'node_modules'));
      }
    }
  }
  execFileSync('touch', [join(root, '.complete')]);
  return { root, commit, lockDiffers };
}
