// Reads a YAML config, validates it, and reports every problem as
// file:line field: message, so a platform team can fix a file without
// guessing which of forty routes is wrong.

import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError, formatFieldPath, type ConfigIssue } from './config-error.js';
import { configSchema, type ParsedConfig } from './config-schema.js';

/** Larger files are refused before parsing: no route table needs this much. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** Alias expansions allowed while building values (defeats "billion laughs"). */
const MAX_ALIAS_COUNT = 200;

export async function readConfigFile(path: string): Promise<{ parsed: ParsedConfig; text: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError([{ file: path, field: '', message: `cannot read config: ${reason}` }]);
  }
  return { parsed: parseConfigText(text, path), text };
}

export function parseConfigText(text: string, file: string): ParsedConfig {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    throw new ConfigError([{ file, field: '', message: `config is larger than ${MAX_CONFIG_BYTES} bytes` }]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return { file, line: pos.line, column: pos.col, field: '', message: e.message.split('\n')[0]! };
      }),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw new ConfigError([{ file, field: '', message: `YAML cannot be expanded: ${(err as Error).message}` }]);
  }
  return validateConfigValue(value, file, (path) => locate(doc, lineCounter, path));
}

/** The line of each route in the config text (1-based; undefined where it cannot be told), for messages about routes. */
export function routeLines(text: string, count: number): (number | undefined)[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  return Array.from({ length: count }, (_, i) => locate(doc, lineCounter, ['routes', i])?.line);
}

type Locator = (path: readonly PropertyKey[]) => { line: number; column: number } | undefined;

export function validateConfigValue(value: unknown, file: string, locateField?: Locator): ParsedConfig {
  const result = configSchema.safeParse(value);
  if (result.success) return result.data;
  const issues: ConfigIssue[] = [];
  for (const issue of flattenIssues(result.error.issues, [])) {
    const pos = locateField?.(issue.path);
    issues.push({ file, line: pos?.line, column: pos?.column, field: formatFieldPath(issue.path), message: issue.message });
  }
  throw new ConfigError(issues);
}

interface FlatIssue {
  path: PropertyKey[];
  message: string;
}

// A union reports one failure per branch. When exactly one branch got past
// the type check (an object given to "number or rule"), its complaint is the
// useful one; otherwise the union's own message says what was expected.
function flattenIssues(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[]): FlatIssue[] {
  const out: FlatIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const plausible = issue.errors.filter((branch) => !branch.every((i) => i.code === 'invalid_type' && i.path.length === 0));
      if (plausible.length === 1) {
        out.push(...flattenIssues(plausible[0]!, path));
        continue;
      }
    }
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...path, key], message: 'unknown field' });
      continue;
    }
    out.push({ path, message: issue.message });
  }
  return out;
}

// Finds the deepest node on the path that exists (a missing field is
// reported at its parent) and turns its offset into a line and column.
function locate(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): { line: number; column: number } | undefined {
  let node: unknown = doc.contents;
  let best: Node | undefined = node as Node | undefined;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) === String(segment) : false));
      if (!pair) break;
      node = pair.value ?? pair.key;
      // A missing or null value has no useful range; its key does.
      best = (isScalar(pair.value) && pair.value.range ? pair.value : pair.key) as Node;
      if (pair.value && !isScalar(pair.value)) best = pair.key as Node;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      if (!node) break;
      best = node as Node;
    } else {
      break;
    }
  }
  const offset = best?.range?.[0];
  if (offset === undefined) return undefined;
  const pos = lines.linePos(offset);
  return { line: pos.line, column: pos.col };
}
