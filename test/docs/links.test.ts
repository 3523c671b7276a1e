// The docs hold together: in README.md, CONTRIBUTING.md and docs/*.md every
// relative link names a file that exists, every #anchor names a heading of its
// target (GitHub's slugs), and the README links every page of docs/.
// External http(s) links are not fetched.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function docFiles(): string[] {
  const pages = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', 'CONTRIBUTING.md', ...pages];
}

/** Fenced code blocks blanked (line numbers kept): nothing in them is a link or a heading. */
function withoutFences(md: string): string[] {
  let fence: string | undefined;
  return md.split('\n').map((line) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = undefined;
      return '';
    }
    if (marker) {
      fence = marker;
      return '';
    }
    return line;
  });
}

/** GitHub's heading ids: lower-case, punctuation dropped (except - and _), spaces → -. */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link in a heading: its text
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a page offers: its headings (repeats get -1, -2, …) and explicit <a id/name>. */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of withoutFences(md)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading !== undefined) {
      const base = slug(heading);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      out.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of line.matchAll(/<a\s[^>]*\b(?:id|name)="([^"]+)"/g)) out.add(m[1]!);
  }
  return out;
}

interface Link {
  line: number;
  target: string;
}

/** Markdown links and images, and HTML href/src, outside code. */
function links(md: string): Link[] {
  const out: Link[] = [];
  withoutFences(md).forEach((raw, i) => {
    const line = raw.replace(/(`+)[^`][\s\S]*?\1/g, (m) => ' '.repeat(m.length)); // inline code
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ line: i + 1, target: m[1]! });
    for (const m of line.matchAll(/<(?:a|img)\s[^>]*\b(?:href|src)="([^"]+)"/g)) out.push({ line: i + 1, target: m[1]! });
  });
  return out;
}

const read = (file: string) => readFileSync(join(root, file), 'utf8');

/** What is wrong with each relative link of one file, as `file:line target: reason`. */
function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  for (const { line, target } of links(read(file))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http(s):, mailto: — not fetched
    const at = `${file}:${line} ${target}`;
    const hash = target.indexOf('#');
    const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const abs = path === '' ? join(root, file) : resolve(root, dirname(file), path);
    if (!`${abs}${sep}`.startsWith(root)) {
      problems.push(`${at}: leaves the repository`);
      continue;
    }
    if (!existsSync(abs)) {
      problems.push(`${at}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!abs.endsWith('.md')) {
      if (!/^L\d+(-L\d+)?$/.test(anchor)) problems.push(`${at}: an anchor into a file that is not markdown`);
      continue;
    }
    if (!anchors(readFileSync(abs, 'utf8')).has(anchor)) {
      problems.push(`${at}: no heading #${anchor} in ${relative(root, abs)}`);
    }
  }
  return problems;
}

describe('docs links', () => {
  it('slugs headings as GitHub does', () => {
    expect(slug('Top-ups, capacity pools, plan changes')).toBe('top-ups-capacity-pools-plan-changes');
    expect(slug('Shadow mode and enforceFrom')).toBe('shadow-mode-and-enforcefrom');
    expect(slug('Settle after the response, no overage')).toBe('settle-after-the-response-no-overage');
    expect(slug('`store.maxAccounts` — the bound (memory_store)')).toBe('storemaxaccounts--the-bound-memory_store');
    expect(slug('See [Stores](stores.md)')).toBe('see-stores');
    expect([...anchors('# A\n## B\n```\n# not a heading\n```\n## B\n### B\n')]).toEqual(['a', 'b', 'b-1', 'b-2']);
  });

  it('finds links outside code only', () => {
    const md = 'see [x](a.md#b) and `[y](no.md)`\n```\n[z](no.md)\n```\n<img src="p.png" alt="">';
    expect(links(md).map((l) => l.target)).toEqual(['a.md#b', 'p.png']);
  });

  it.each(docFiles())('%s: every relative link names a file that exists and a heading it has', (file) => {
    expect(brokenLinks(file)).toEqual([]);
  });

  it('the README links every page of docs/ and CONTRIBUTING.md', () => {
    const linked = new Set(
      links(read('README.md'))
        .map((l) => l.target.split('#')[0]!)
        .filter((t) => t !== '' && !/^[a-z][a-z0-9+.-]*:/i.test(t))
        .map((t) => relative(root, resolve(root, t)).split(sep).join('/')),
    );
    const unlinked = docFiles()
      .filter((f) => f !== 'README.md')
      .filter((f) => !linked.has(f));
    expect(unlinked).toEqual([]);
  });
});
