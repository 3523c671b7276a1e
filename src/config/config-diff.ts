// What a reload changed, as short lines for the `config reloaded` log: an
// operator reading the log should see "plans.basic.ai_tasks: 1000 → 2000"
// rather than two hashes. Pure: two parsed configs in, strings out.

import type { ParsedConfig } from './config-schema.js';

/** Keys whose values may be (or embed) credentials: the line says "changed" and never shows them. */
const SECRET_KEY = /secret|token|password|passwd|smtp|apikey|api_key|private/i;

type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const same = (a: Json, b: Json) => JSON.stringify(a) === JSON.stringify(b);

function show(v: Json): string {
  if (v === undefined) return '(none)';
  if (v === null) return 'unlimited';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Leaf-by-leaf differences under `path` (arrays are one leaf). */
function leaves(path: string, a: Json, b: Json, out: string[]): void {
  if (same(a, b)) return;
  // A section added or removed is walked too, so its secrets stay hidden.
  if ((isObject(a) || a === undefined) && (isObject(b) || b === undefined)) {
    const x = a ?? {};
    const y = b ?? {};
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) leaves(`${path}.${k}`, x[k], y[k], out);
    return;
  }
  const last = path.slice(path.lastIndexOf('.') + 1);
  if (SECRET_KEY.test(last) || SECRET_KEY.test(path)) out.push(`${path} changed`);
  else out.push(`${path}: ${show(a)} → ${show(b)}`);
}

/** Members added (+), removed (-) and changed (~, naming the changed fields) of a keyed section. */
function members(section: string, a: Record<string, Json>, b: Record<string, Json>, out: string[]): void {
  for (const id of Object.keys(b)) if (!(id in a)) out.push(`${section} + ${id}`);
  for (const id of Object.keys(a)) if (!(id in b)) out.push(`${section} - ${id}`);
  for (const id of Object.keys(b)) {
    const before = a[id];
    const after = b[id];
    if (!(id in a) || same(before, after)) continue;
    const fields =
      isObject(before) && isObject(after) ? [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !same(before[k], after[k])) : [];
    out.push(`${section} ~ ${id}${fields.length > 0 ? ` (${fields.join(', ')})` : ''}`);
  }
}

/**
 * The changes from `before` to `after`, in a stable order: credit types,
 * plans (one line per quota), routes (by name), then every other setting
 * leaf by leaf. Empty when the two configs mean the same.
 */
export function diffConfigs(before: ParsedConfig, after: ParsedConfig): string[] {
  const out: string[] = [];
  members('creditTypes', before.creditTypes, after.creditTypes, out);
  const plansA = before.plans as Record<string, Record<string, Json>>;
  const plansB = after.plans as Record<string, Record<string, Json>>;
  for (const id of Object.keys(plansB)) if (!(id in plansA)) out.push(`plans + ${id}`);
  for (const id of Object.keys(plansA)) if (!(id in plansB)) out.push(`plans - ${id}`);
  for (const id of Object.keys(plansB)) if (id in plansA) leaves(`plans.${id}`, plansA[id], plansB[id], out);
  const byName = (c: ParsedConfig) => Object.fromEntries(c.routes.map((r) => [r.name, r as Json]));
  members('routes', byName(before), byName(after), out);
  // A reorder alone changes which route matches first.
  const order = (c: ParsedConfig) =>
    c.routes.map((r) => r.name).filter((n) => before.routes.some((r) => r.name === n) && after.routes.some((r) => r.name === n));
  if (!same(order(before), order(after))) out.push('routes reordered');
  const rest = (c: ParsedConfig): Record<string, Json> => {
    const { creditTypes: _t, plans: _p, routes: _r, ...others } = c;
    return others;
  };
  const restA = rest(before);
  const restB = rest(after);
  for (const k of new Set([...Object.keys(restA), ...Object.keys(restB)])) leaves(k, restA[k], restB[k], out);
  return out;
}
