// Settling a held cost from the upstream's answer: the actual amount comes
// from a response header, scaled and rounded; the caller caps it at the hold.

export interface SettleRule {
  readonly responseHeader: string;
  readonly divideBy: number;
  readonly round: 'up' | 'down' | 'nearest';
}

export type SettleResult = { readonly ok: true; readonly amount: number } | { readonly ok: false; readonly reason: string };

// Digits with an optional fraction: "905", "905.5". Anything else is malformed.
const NUMBER = /^\d{1,15}(\.\d{1,6})?$/;

export function settledAmount(rule: SettleRule, headerValue: string | string[] | undefined): SettleResult {
  if (headerValue === undefined) return { ok: false, reason: `response has no ${rule.responseHeader} header` };
  const text = Array.isArray(headerValue) ? (headerValue.length === 1 ? headerValue[0]! : '') : headerValue.trim();
  if (!NUMBER.test(text)) return { ok: false, reason: `${rule.responseHeader} is not a number: ${JSON.stringify(text.slice(0, 40))}` };
  const scaled = Number(text) / rule.divideBy;
  // Rounding a float like 900/60 must not turn 15 into 16.
  const clean = Math.round(scaled * 1e9) / 1e9;
  const amount = rule.round === 'up' ? Math.ceil(clean) : rule.round === 'down' ? Math.floor(clean) : Math.round(clean);
  return { ok: true, amount };
}

/** What the actual amount means for the hold: charge at most the hold, report what went unbilled. */
export function settleAgainstHold(hold: number, actual: number): { readonly charge: number; readonly release: number; readonly overage: number } {
  const charge = Math.min(hold, actual);
  return { charge, release: hold - charge, overage: Math.max(0, actual - hold) };
}
