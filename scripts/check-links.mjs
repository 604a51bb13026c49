#!/usr/bin/env node
// Checks that every relative link in the README.md files and docs/*.md resolves to a
// file inside the repo (and, for a link into a markdown file, to one of its headings).
// Usage: node scripts/check-links.mjs   — exits 1 and lists the broken links.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', '.turbo', 'coverage']);

/** README.md anywhere (outside dependencies and build output) and every .md under docs/. */
function markdownFiles(dir = root, found = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const abs = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      // docs/api is TypeDoc's output (`pnpm run docs`), with copies of linked files: not ours to check.
      const generated = path.relative(root, abs) === path.join('docs', 'api');
      if (!SKIP_DIRS.has(entry.name) && !generated) markdownFiles(abs, found);
      continue;
    }
    const rel = path.relative(root, abs);
    const inDocs = rel.startsWith(`docs${path.sep}`) && entry.name.endsWith('.md');
    if (entry.name === 'README.md' || inDocs) found.push(abs);
  }
  return found.sort();
}

/** The lines of a markdown file that are not inside fenced code blocks, with their numbers. */
function proseLines(text) {
  const lines = [];
  let fence;
  text.split('\n').forEach((line, i) => {
    const opener = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (opener) {
      if (!fence) fence = opener[1];
      else if (opener[1][0] === fence[0] && opener[1].length >= fence.length) fence = undefined;
      return;
    }
    if (!fence) lines.push({ line, number: i + 1 });
  });
  return lines;
}

/** Inline code spans hold no links: blank them out, keeping the columns. */
function withoutCodeSpans(line) {
  return line.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (span) => ' '.repeat(span.length));
}

function linksOf(text) {
  const links = [];
  for (const { line, number } of proseLines(text)) {
    const prose = withoutCodeSpans(line);
    for (const m of prose.matchAll(
      /\]\(\s*<?([^)\s>]+)>?(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g,
    ))
      links.push({ target: m[1], line: number });
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/.exec(prose);
    if (definition) links.push({ target: definition[1], line: number });
  }
  return links;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchorsOf(file) {
  const anchors = new Set();
  const seen = new Map();
  const text = readFileSync(file, 'utf8');
  for (const { line } of proseLines(text)) {
    for (const m of line.matchAll(/<a\s[^>]*(?:name|id)="([^"]+)"/g)) anchors.add(m[1]);
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const words = heading[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/<[^>]+>/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(words) ?? 0;
    seen.set(words, count + 1);
    anchors.add(count === 0 ? words : `${words}-${count}`);
  }
  return anchors;
}

const anchorCache = new Map();
function hasAnchor(file, anchor) {
  if (!anchorCache.has(file)) anchorCache.set(file, anchorsOf(file));
  return anchorCache.get(file).has(anchor);
}

/** Why a link does not resolve, or undefined when it does (or is not a relative link). */
function problemOf(file, target) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return undefined;
  const [pathPart, anchor] = target.split('#', 2);
  let decoded;
  try {
    decoded = decodeURIComponent(pathPart.split('?')[0]);
  } catch {
    return 'not a valid URL path';
  }
  const base = decoded.startsWith('/') ? root : path.dirname(file);
  const abs = decoded === '' ? file : path.resolve(base, decoded.replace(/^\/+/, ''));
  const rel = path.relative(root, abs);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return 'points outside the repo';
  if (!existsSync(abs)) return 'no such file';
  if (!anchor) return undefined;
  const page = statSync(abs).isDirectory() ? path.join(abs, 'README.md') : abs;
  if (!page.endsWith('.md') || !existsSync(page)) return undefined;
  return hasAnchor(page, decodeURIComponent(anchor).toLowerCase())
    ? undefined
    : `no heading #${anchor} in ${path.relative(root, page)}`;
}

const files = markdownFiles();
const broken = [];
let checked = 0;
for (const file of files) {
  for (const { target, line } of linksOf(readFileSync(file, 'utf8'))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue;
    checked++;
    const problem = problemOf(file, target);
    if (problem) broken.push(`${path.relative(root, file)}:${line}: ${target} (${problem})`);
  }
}

if (broken.length > 0) {
  process.stderr.write(`${broken.length} broken relative link(s):\n${broken.join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`${checked} relative links in ${files.length} files: all resolve\n`);
