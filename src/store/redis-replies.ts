// Reads what creditgate's Lua scripts answer and what Redis stores: a charge
// reply as a ChargeOutcome, a usage reply as PoolUsage, a top-up reply and a
// stored grant as a Grant, an idempotency hash as an IdempotencyRecord. The
// layouts are those lua/*.lua write.

import type { ChargedPool, ChargeOutcome, Grant, GrantResult, IdempotencyRecord, PoolCharge, PoolKey, PoolUsage } from './credit-store.js';

export type Reply = (string | number)[];

/** Grants are stored compactly: amount, used, expiresAt, createdAt. */
interface StoredGrant {
  a: number;
  u: number;
  x: number;
  c: number;
}

export function idempotencyRecord(state: unknown, fingerprint: unknown, response: unknown): IdempotencyRecord {
  return {
    state: String(state) as IdempotencyRecord['state'],
    fingerprint: typeof fingerprint === 'string' ? fingerprint : '',
    ...(typeof response === 'string' ? { response } : {}),
  };
}

function toGrant(id: string, creditType: string, raw: string): Grant {
  const g = JSON.parse(raw) as StoredGrant;
  return { id, creditType, amount: g.a, used: g.u, expiresAt: g.x, createdAt: g.c };
}

/** A charge reply: 2 and a duplicate's record, or 1 (charged) / 0 (refused) and each pool's counts. */
export function chargeOutcome(reply: Reply, pools: readonly PoolCharge[]): ChargeOutcome {
  if (reply[0] === 2) return { ok: false, duplicate: idempotencyRecord(reply[1], reply[2], reply[3]), pools: [] };
  let at = 1;
  const next = () => reply[at++]!;
  const result: ChargedPool[] = pools.map((p) => {
    const planUsed = Number(next());
    const grantTotal = Number(next());
    const grantUsed = Number(next());
    const flags = Number(next());
    const charged = Number(next());
    const planDelta = Number(next());
    const fired = Array.from({ length: Number(next()) }, () => Number(next()));
    const draws = Array.from({ length: Number(next()) }, () => ({ grantId: String(next()), amount: Number(next()) }));
    return {
      creditType: p.creditType,
      planUsed,
      grantTotal,
      grantUsed,
      wouldRefuse: (flags & 1) !== 0,
      emptied: (flags & 2) !== 0,
      charged,
      planDelta,
      fired,
      draws,
    };
  });
  return { ok: reply[0] === 1, pools: result };
}

/** A usage reply: each pool's plan counter and its active grants. */
export function poolUsages(reply: Reply, pools: readonly PoolKey[]): PoolUsage[] {
  let at = 0;
  const next = () => reply[at++]!;
  return pools.map((p) => {
    const planUsed = Number(next());
    const grants = Array.from({ length: Number(next()) }, () => toGrant(String(next()), p.creditType, String(next())));
    return {
      creditType: p.creditType,
      planUsed,
      grantTotal: grants.reduce((s, g) => s + g.amount, 0),
      grantUsed: grants.reduce((s, g) => s + g.used, 0),
      grants,
    };
  });
}

/** A top-up reply: whether the grant was created, and the grant (the original one on a replay). */
export function grantResult([created, raw]: Reply): GrantResult {
  const answer = JSON.parse(String(raw)) as StoredGrant & { id: string; t: string };
  return { created: created === 1, grant: toGrant(answer.id, answer.t, JSON.stringify(answer)) };
}
