// IETF httpapi RateLimit fields (draft-ietf-httpapi-ratelimit-headers-11):
// one Structured Field list member per charged pool, named by credit type.
//   RateLimit-Policy: "ai_tasks";q=1000;w=2592000
//   RateLimit:        "ai_tasks";r=975;t=86400
// Credit type ids are [a-z0-9_], so they need no escaping inside the quotes.
// Unlimited pools have no quota to announce and are left out; pools that
// never reset (capacity) carry no window and no reset time.

import type { PoolStatus } from '../engine/credit-engine.js';

export function secondsUntil(epochMs: number, now: number): number {
  return Math.max(0, Math.ceil((epochMs - now) / 1000));
}

export function rateLimitHeaders(pools: readonly PoolStatus[], now: number): Record<string, string> {
  const policy: string[] = [];
  const state: string[] = [];
  for (const p of pools) {
    if (p.allowance === null || p.remaining === null) continue;
    const name = `"${p.creditType}"`;
    policy.push(p.windowSeconds === null ? `${name};q=${p.allowance}` : `${name};q=${p.allowance};w=${p.windowSeconds}`);
    state.push(p.resetsAt === null ? `${name};r=${p.remaining}` : `${name};r=${p.remaining};t=${secondsUntil(p.resetsAt, now)}`);
  }
  if (policy.length === 0) return {};
  return { 'ratelimit-policy': policy.join(', '), ratelimit: state.join(', ') };
}
