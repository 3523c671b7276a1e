// Turns a route's charge rules and a request's inputs into credit amounts.
// Pure: the caller supplies headers, query and (already parsed) body.

import type { SettleRule } from './settle-rule.js';

export type CostSource =
  | { readonly from: 'fixed'; readonly amount: number }
  | { readonly from: 'body'; readonly field: string }
  | { readonly from: 'bodyLength'; readonly field: string }
  | { readonly from: 'header'; readonly name: string }
  | { readonly from: 'query'; readonly name: string };

export interface CostRule {
  readonly source: CostSource;
  /** A held cost: charged before forwarding, settled from the response. */
  readonly settle?: SettleRule | undefined;
  /** For a hold: take what remains down to this much (default 1). */
  readonly minReserve?: number | undefined;
  /** Used when the input is absent; without it an absent input is a bad request. */
  readonly default?: number | undefined;
  readonly min: number;
  readonly max: number;
}

export interface CostInputs {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly query: URLSearchParams;
  /** Parsed JSON body, or undefined when the route does not read the body. */
  readonly body?: unknown;
}

export type CostResult = { readonly ok: true; readonly amount: number } | { readonly ok: false; readonly message: string };

export function needsBody(rule: CostRule): boolean {
  return rule.source.from === 'body' || rule.source.from === 'bodyLength';
}

export function describeCostSource(source: CostSource): string {
  switch (source.from) {
    case 'fixed':
      return String(source.amount);
    case 'body':
      return `body field "${source.field}"`;
    case 'bodyLength':
      return `length of body array "${source.field}"`;
    case 'header':
      return `header "${source.name}"`;
    case 'query':
      return `query parameter "${source.name}"`;
  }
}

/** Reads a dotted path ("items.count") from a parsed JSON value. */
export function readJsonPath(value: unknown, path: string): unknown {
  let current: unknown = value;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

// Header and query values must be plain decimal digits: "1e3", "0x10", " 5"
// and "5.0" are refused so that what is charged is exactly what was written.
const DECIMAL = /^\d{1,16}$/;

type RawInput = { present: false } | { present: true; value: number | undefined; what: string };

function rawInput(source: CostSource, inputs: CostInputs): RawInput {
  switch (source.from) {
    case 'fixed':
      return { present: true, value: source.amount, what: 'fixed cost' };
    case 'header': {
      const raw = inputs.headers[source.name.toLowerCase()];
      if (raw === undefined) return { present: false };
      const text = Array.isArray(raw) ? (raw.length === 1 ? raw[0]! : '') : raw;
      return { present: true, value: DECIMAL.test(text) ? Number(text) : undefined, what: describeCostSource(source) };
    }
    case 'query': {
      const all = inputs.query.getAll(source.name);
      if (all.length === 0) return { present: false };
      const text = all.length === 1 ? all[0]! : '';
      return { present: true, value: DECIMAL.test(text) ? Number(text) : undefined, what: describeCostSource(source) };
    }
    case 'body': {
      const v = readJsonPath(inputs.body, source.field);
      if (v === undefined || v === null) return { present: false };
      return { present: true, value: typeof v === 'number' ? v : undefined, what: describeCostSource(source) };
    }
    case 'bodyLength': {
      const v = readJsonPath(inputs.body, source.field);
      if (v === undefined || v === null) return { present: false };
      return { present: true, value: Array.isArray(v) ? v.length : undefined, what: describeCostSource(source) };
    }
  }
}

export function evaluateCost(rule: CostRule, inputs: CostInputs): CostResult {
  const input = rawInput(rule.source, inputs);
  let amount: number;
  if (!input.present) {
    if (rule.default === undefined) {
      return { ok: false, message: `missing ${describeCostSource(rule.source)}` };
    }
    amount = rule.default;
  } else if (input.value === undefined) {
    const expected = rule.source.from === 'bodyLength' ? 'an array' : 'a whole number';
    return { ok: false, message: `${input.what} must be ${expected}` };
  } else {
    amount = input.value;
  }
  if (!Number.isSafeInteger(amount)) {
    return { ok: false, message: `${describeCostSource(rule.source)} must be a whole number, got ${amount}` };
  }
  if (amount < rule.min) {
    return { ok: false, message: `${describeCostSource(rule.source)} must be at least ${rule.min}, got ${amount}` };
  }
  if (amount > rule.max) {
    return { ok: false, message: `${describeCostSource(rule.source)} must be at most ${rule.max}, got ${amount}` };
  }
  return { ok: true, amount };
}
