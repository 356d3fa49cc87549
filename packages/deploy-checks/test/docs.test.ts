import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { runtimeEnvShape } from '@polyqueue/app-runtime';
import type { BrokerDriver } from '@polyqueue/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  appSchemas,
  driverVariables,
  loadDrivers,
  platformVariables,
  repoRoot,
  variableNames,
} from '../src/index';

/**
 * Keeps README.md, README.ja.md and docs/ honest against the code and against themselves:
 * every variable the apps and drivers parse is documented, every `npm run <script>` exists,
 * every link between the docs (file and #anchor) resolves, every doc is reachable from the
 * README, English and Japanese counterparts link to each other, the job events named are the ones
 * the workers publish, and no doc shows the CLI as a bare `polyqueue ...` command line (it runs
 * as `npm run polyqueue -- ...`). Each failure names the file, the line where there is one, and
 * the problem.
 */

interface Doc {
  /** Path relative to the repository root, with forward slashes. */
  path: string;
  abs: string;
  lines: string[];
}

interface Link {
  doc: Doc;
  line: number;
  target: string;
  /** Resolved file the link points at (the doc itself for `#anchor`), or undefined for URLs. */
  file?: string;
  anchor?: string;
}

function rel(abs: string): string {
  return relative(repoRoot, abs).split('\\').join('/');
}

function markdownFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const abs = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...markdownFiles(abs));
    else if (entry.name.endsWith('.md')) found.push(abs);
  }
  return found.sort();
}

function readDoc(abs: string): Doc {
  return { path: rel(abs), abs, lines: readFileSync(abs, 'utf8').split('\n') };
}

const docs: Doc[] = [
  join(repoRoot, 'README.md'),
  join(repoRoot, 'README.ja.md'),
  ...markdownFiles(join(repoRoot, 'docs')),
]
  .filter((abs) => existsSync(abs))
  .map(readDoc);

const isJapanese = (doc: Doc) => doc.path === 'README.ja.md' || doc.path.startsWith('docs/ja/');
const englishDocs = docs.filter((doc) => !isJapanese(doc));

/** Lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(doc: Doc): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  let fence: string | undefined;
  doc.lines.forEach((text, index) => {
    const marker = /^\s*(```+|~~~+)/.exec(text)?.[1];
    if (marker) {
      if (!fence) fence = marker[0]!;
      else if (marker[0] === fence) fence = undefined;
      return;
    }
    if (!fence) out.push({ text, line: index + 1 });
  });
  return out;
}

/** GitHub's heading anchor (github-slugger): lower case, punctuation dropped, spaces to dashes. */
export function githubSlug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The text GitHub renders for a heading's markdown (links, code spans, emphasis, HTML). */
function headingText(markdown: string): string {
  return markdown
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`([^`]*)`/g, '$1')
    .trim();
}

const anchorCache = new Map<string, Set<string>>();

/** Every anchor a markdown file offers: heading slugs (with -1, -2 for repeats) and <a id/name>. */
function anchorsOf(abs: string): Set<string> {
  const cached = anchorCache.get(abs);
  if (cached) return cached;
  const doc = readDoc(abs);
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of proseLines(doc)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (heading) {
      const base = githubSlug(headingText(heading[1]!));
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      anchors.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const match of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(match[1]!);
  }
  anchorCache.set(abs, anchors);
  return anchors;
}

/** Markdown links outside code: inline `[text](target)` and reference definitions. */
function linksOf(doc: Doc): Link[] {
  const links: Link[] = [];
  for (const { text, line } of proseLines(doc)) {
    const withoutCode = text.replace(/`[^`]*`/g, '');
    const targets = [
      ...[...withoutCode.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
      ...[...withoutCode.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g)].map((m) => m[1]!),
    ];
    for (const target of targets) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) {
        links.push({ doc, line, target });
        continue;
      }
      const hash = target.indexOf('#');
      const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
      const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
      const file =
        path === '' ? doc.abs : path.startsWith('/') ? join(repoRoot, path) : resolve(dirname(doc.abs), path);
      links.push({ doc, line, target, file, anchor });
    }
  }
  return links;
}

const allLinks = docs.flatMap(linksOf);

describe('docs', () => {
  it('exist: README.md and docs/', () => {
    expect(docs.map((d) => d.path)).toContain('README.md');
    expect(englishDocs.length).toBeGreaterThan(5);
  });

  it('every link between the docs resolves, file and #anchor', () => {
    const problems: string[] = [];
    for (const link of allLinks) {
      if (!link.file) continue;
      const where = `${link.doc.path}:${link.line}: link (${link.target})`;
      if (!existsSync(link.file)) {
        problems.push(`${where}: no such file ${rel(link.file)}`);
        continue;
      }
      if (link.anchor === undefined || link.anchor === '') continue;
      if (!link.file.endsWith('.md') || statSync(link.file).isDirectory()) continue;
      const anchors = anchorsOf(link.file);
      if (!anchors.has(link.anchor))
        problems.push(
          `${where}: ${rel(link.file)} has no heading with the anchor #${link.anchor} (it has: ${[...anchors].map((a) => `#${a}`).join(', ')})`,
        );
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('every doc under docs/ is reachable from README.md by links', () => {
    const reached = new Set<string>();
    const queue = [join(repoRoot, 'README.md')];
    while (queue.length > 0) {
      const abs = queue.shift()!;
      if (reached.has(abs)) continue;
      reached.add(abs);
      for (const link of allLinks)
        if (link.doc.abs === abs && link.file?.endsWith('.md') && existsSync(link.file))
          queue.push(link.file);
    }
    const problems = docs
      .filter((doc) => !reached.has(doc.abs))
      .map((doc) => `${doc.path}: no link leads here from README.md (add it to the README's docs index)`);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('English docs with a Japanese counterpart link to it, and it links back', () => {
    const problems: string[] = [];
    const linksTo = (from: Doc, to: string) => allLinks.some((l) => l.doc === from && l.file === to);
    for (const ja of docs.filter(isJapanese)) {
      const englishPath = ja.path === 'README.ja.md' ? 'README.md' : ja.path.replace(/^docs\/ja\//, 'docs/');
      const en = docs.find((d) => d.path === englishPath);
      if (!en) {
        problems.push(`${ja.path}: no English counterpart at ${englishPath}`);
        continue;
      }
      if (!linksTo(en, ja.abs)) problems.push(`${en.path}: does not link to its Japanese version ${ja.path}`);
      if (!linksTo(ja, en.abs)) problems.push(`${ja.path}: does not link back to ${en.path}`);
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('every `npm run <script>` names a script of the root package.json (or of the named workspace)', () => {
    const scriptsOf = new Map<string, Record<string, string>>();
    const root = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
    scriptsOf.set('', root.scripts ?? {});
    for (const pattern of root.workspaces as string[]) {
      const base = pattern.replace(/\/\*$/, '');
      const dirs = pattern.endsWith('/*')
        ? readdirSync(join(repoRoot, base)).map((name) => `${base}/${name}`)
        : [pattern];
      for (const dir of dirs) {
        const file = join(repoRoot, dir, 'package.json');
        if (!existsSync(file)) continue;
        const pkg = JSON.parse(readFileSync(file, 'utf8'));
        scriptsOf.set(pkg.name, pkg.scripts ?? {});
        scriptsOf.set(dir, pkg.scripts ?? {});
      }
    }
    const problems: string[] = [];
    for (const doc of docs) {
      doc.lines.forEach((text, index) => {
        const commands = /\bnpm (?:run(?:-script)?|start|test)\b[^;&|#`]*/g;
        for (const match of text.matchAll(commands)) {
          const words = match[0].trim().split(/\s+/);
          let workspace = '';
          let script = words[1] === 'start' || words[1] === 'test' ? words[1] : undefined;
          for (let i = 2; i < words.length && words[i] !== '--'; i++) {
            const word = words[i]!;
            if (word === '--workspace' || word === '-w') workspace = words[++i] ?? '';
            else if (word.startsWith('--workspace=')) workspace = word.slice('--workspace='.length);
            else if (word.startsWith('-')) continue;
            else if (script === undefined) script = /^[A-Za-z0-9:_.-]*[A-Za-z0-9_]/.exec(word)?.[0] ?? word;
          }
          if (script === undefined) continue;
          const scripts = scriptsOf.get(workspace);
          const where = `${doc.path}:${index + 1}: \`${match[0].trim()}\``;
          if (!scripts) problems.push(`${where}: no workspace "${workspace}"`);
          else if (!(script in scripts))
            problems.push(
              `${where}: no script "${script}" in ${workspace ? `workspace ${workspace}` : 'the root package.json'}`,
            );
        }
      });
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('show the CLI as `npm run polyqueue -- ...`, never as a bare `polyqueue ...` command line', () => {
    // A command line: a line of a code block, or an inline code span with arguments. Prose may
    // still name a subcommand (`polyqueue migrate` checks ...).
    const bare = /^(?:\$ )?polyqueue (stats|dead|migrate)\b/;
    const problems: string[] = [];
    for (const doc of docs) {
      const prose = new Set(proseLines(doc).map((l) => l.line));
      doc.lines.forEach((text, index) => {
        const candidates = prose.has(index + 1)
          ? [...text.matchAll(/`([^`]+)`/g)]
              .map((m) => m[1]!.trim())
              .filter((code) => /^\S+ \S+ \S/.test(code))
          : [text.trim()];
        for (const code of candidates) {
          const match = bare.exec(code);
          if (match)
            problems.push(
              `${doc.path}:${index + 1}: \`${code}\`: there is no polyqueue binary on PATH; write \`npm run polyqueue -- ${match[1]} ...\``,
            );
        }
      });
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('name the job events the workers publish, and no others', () => {
    const recorder = readFileSync(join(repoRoot, 'packages/app-runtime/src/job-recorder.ts'), 'utf8');
    const published = new Set([...recorder.matchAll(/return '(job\.[a-z_]+)'/g)].map((m) => m[1]!));
    const problems: string[] = [];
    const mentioned = new Set<string>();
    for (const doc of docs)
      doc.lines.forEach((text, index) => {
        // `job.js` and the like are the dashboard's files, not events.
        for (const match of text.matchAll(/`(job\.(?!(?:js|ts|css|html)`)[a-z_]+)`/g)) {
          mentioned.add(match[1]!);
          if (!published.has(match[1]!))
            problems.push(
              `${doc.path}:${index + 1}: \`${match[1]}\` is not an event job-recorder.ts publishes (${[...published].join(', ')})`,
            );
        }
      });
    for (const event of published)
      if (!mentioned.has(event))
        problems.push(`job-recorder.ts publishes \`${event}\`, which no doc names (README.md, "Job events")`);
    expect(published.size).toBeGreaterThan(0);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  describe('every environment variable the code parses is documented in README.md or docs/', () => {
    let drivers: Map<string, BrokerDriver>;
    beforeAll(async () => {
      drivers = await loadDrivers();
    });

    it('the apps, the runtime and every broker driver of the registry', () => {
      const readers = new Map<string, string[]>();
      const add = (name: string, reader: string) => readers.set(name, [...(readers.get(name) ?? []), reader]);
      for (const name of Object.keys(runtimeEnvShape)) add(name, 'every app (app-runtime)');
      for (const [app, schema] of Object.entries(appSchemas))
        for (const name of variableNames(schema)) add(name, `apps/${app}/src/config.ts`);
      for (const [name, brokers] of driverVariables(drivers)) add(name, `BROKER=${brokers.join('|')}`);
      for (const name of Object.keys(platformVariables)) add(name, 'the platform');

      const text = englishDocs.map((doc) => doc.lines.join('\n')).join('\n');
      const problems = [...readers]
        .filter(([name]) => !new RegExp(`(?<![A-Z0-9_])${name}(?![A-Z0-9_])`).test(text))
        .map(
          ([name, by]) =>
            `${name} (read by ${[...new Set(by)].join(', ')}) is documented nowhere in README.md or docs/ (English)`,
        );
      expect(readers.size).toBeGreaterThan(30);
      expect(problems, problems.join('\n')).toEqual([]);
    });
  });
});

describe('githubSlug', () => {
  it('matches GitHub for the headings these docs use', () => {
    expect(githubSlug('1. The queue backs up (QueueBacklogHigh, NoActiveConsumers, ProcessingRateLow)')).toBe(
      '1-the-queue-backs-up-queuebackloghigh-noactiveconsumers-processingratelow',
    );
    expect(githubSlug('redis-list, redis-reliable, redis-streams')).toBe(
      'redis-list-redis-reliable-redis-streams',
    );
    expect(githubSlug('Dead letters growing (DeadLettersGrowing)')).toBe(
      'dead-letters-growing-deadlettersgrowing',
    );
    expect(githubSlug('1. キューが詰まる(QueueBacklogHigh)')).toBe('1-キューが詰まるqueuebackloghigh');
    expect(githubSlug('Q4M からの移行:手順')).toBe('q4m-からの移行手順');
    expect(githubSlug('ブローカーの選び方')).toBe('ブローカーの選び方');
  });
});
