// Settling a held cost from the upstream's answer: the actual amount comes
// from a response header (known with the status), or from the body or a
// trailer (known only when the body ends), scaled and rounded; the caller
// caps it at the hold.

export interface SettleRule {
  /** Exactly one of responseHeader, responseJson, responseTrailer is set. */
  readonly responseHeader?: string | undefined;
  /** Dotted paths in a JSON body or in SSE events' JSON data; their values are summed. */
  readonly responseJson?: readonly string[] | undefined;
  readonly responseTrailer?: string | undefined;
  readonly divideBy: number;
  readonly round: 'up' | 'down' | 'nearest';
  /** A response that ends before the amount is known: the hold is the charge, or nothing is. */
  readonly onIncomplete: 'hold' | 'release';
}

/** Whether the amount is known only at the end of the body (body or trailer), not with the status. */
export function settlesAtEnd(rule: SettleRule): boolean {
  return rule.responseHeader === undefined;
}

/** Scales and rounds a raw actual amount by the rule. */
export function scaledAmount(rule: SettleRule, raw: number): number {
  const scaled = raw / rule.divideBy;
  // Rounding a float like 900/60 must not turn 15 into 16.
  const clean = Math.round(scaled * 1e9) / 1e9;
  return rule.round === 'up' ? Math.ceil(clean) : rule.round === 'down' ? Math.floor(clean) : Math.round(clean);
}

export type SettleResult = { readonly ok: true; readonly amount: number } | { readonly ok: false; readonly reason: string };

// Digits with an optional fraction: "905", "905.5". Anything else is malformed.
const NUMBER = /^\d{1,15}(\.\d{1,6})?$/;

/** The amount from a header or trailer value (`name` says which, for the reason). */
export function settledAmount(rule: SettleRule, headerValue: string | string[] | undefined, name = rule.responseHeader ?? rule.responseTrailer): SettleResult {
  if (headerValue === undefined) return { ok: false, reason: `response has no ${name} header` };
  const text = Array.isArray(headerValue) ? (headerValue.length === 1 ? headerValue[0]! : '') : headerValue.trim();
  if (!NUMBER.test(text)) return { ok: false, reason: `${name} is not a number: ${JSON.stringify(text.slice(0, 40))}` };
  return { ok: true, amount: scaledAmount(rule, Number(text)) };
}

/** The amount from the last value seen per JSON path: their sum, or which paths never appeared. */
export function jsonSettledAmount(rule: SettleRule, values: ReadonlyMap<string, number>): SettleResult {
  const paths = rule.responseJson ?? [];
  const missing = paths.filter((p) => !values.has(p));
  if (missing.length > 0) return { ok: false, reason: `response has no number at ${missing.join(', ')}` };
  return {
    ok: true,
    amount: scaledAmount(
      rule,
      paths.reduce((sum, p) => sum + values.get(p)!, 0),
    ),
  };
}

/** What the actual amount means for the hold: charge at most the hold, report what went unbilled. */
export function settleAgainstHold(hold: number, actual: number): { readonly charge: number; readonly release: number; readonly overage: number } {
  const charge = Math.min(hold, actual);
  return { charge, release: hold - charge, overage: Math.max(0, actual - hold) };
}
