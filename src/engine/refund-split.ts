// Which credits a partial refund gives back: the last taken first (grants in
// reverse draw order, latest expiry first), then the plan. A full refund
// gives back exactly what the charge took.

import type { RefundLine } from '../store/credit-store.js';

export interface ChargedLine {
  readonly creditType: string;
  readonly cycleStart: number;
  readonly planDelta: number;
  readonly draws: readonly { readonly grantId: string; readonly amount: number }[];
}

export function splitRefund(line: ChargedLine, amount: number): RefundLine {
  let rest = amount;
  const draws: { grantId: string; amount: number }[] = [];
  for (const d of [...line.draws].reverse()) {
    if (rest === 0) break;
    const take = Math.min(rest, d.amount);
    draws.push({ grantId: d.grantId, amount: take });
    rest -= take;
  }
  const planDelta = line.planDelta > 0 ? Math.min(rest, line.planDelta) : line.planDelta;
  return { creditType: line.creditType, cycleStart: line.cycleStart, planDelta, draws };
}
