// The charge path: a request's pools charged all or nothing in one store
// step, refusals this replica can decide alone answered from memory (but
// never hiding a replay), and the outage policy when the store is down.

import type { CompiledConfig, RouteDef } from '../config/compiled-config.js';
import { isShadow, quotaOf } from '../config/compiled-config.js';
import { cycleContaining } from '../domain/billing-cycle.js';
import { StoreError, type CreditStore, type IdempotencyRecord, type PoolState } from '../store/credit-store.js';
import type { AccountDirectory } from './account-directory.js';
import type { AfterCharge } from './after-charge.js';
import { IDEMPOTENCY_LEASE_MS, type IdempotencyLeases } from './idempotency-leases.js';
import { newClaim } from './ids.js';
import type { OutageMode } from './outage-mode.js';
import { isCapacity, mergeCosts, pendingRelease, poolCharge, poolStatus } from './pool-status.js';
import { StoreDown, type StoreGuard } from './store-guard.js';
import type { ChargeDecision, ChargeReceipt, ChargeRefusal, CostLine, EngineObserver, PoolStatus, RequestIdempotency, ShadowDenial } from './types.js';

/** How long past the upstream timeout a request's idempotency lease is still renewed (a long stream). */
const LEASE_RENEWAL_AFTER_TIMEOUT_MS = 15 * 60_000;

export interface ChargeOptions {
  readonly config: CompiledConfig;
  readonly route?: RouteDef | undefined;
  readonly idempotency?: RequestIdempotency | undefined;
  /** A verified token's plan claim. */
  readonly plan?: string | undefined;
}

export interface ChargerParts {
  readonly store: CreditStore;
  readonly now: () => number;
  readonly observer: EngineObserver | undefined;
  readonly directory: AccountDirectory;
  readonly guard: StoreGuard;
  readonly leases: IdempotencyLeases;
  readonly outage: OutageMode;
  readonly afterCharge: AfterCharge;
}

export class Charger {
  constructor(private readonly p: ChargerParts) {}

  charge(accountId: string, costs: readonly CostLine[], options: ChargeOptions): Promise<ChargeDecision> {
    return this.inStore(accountId, costs, options).catch((err: unknown) => {
      if (!(err instanceof StoreDown)) throw err;
      // A key nobody can check could be a replay: refused rather than forwarded again.
      if (options.idempotency) throw new StoreError('the credit store is unreachable: an idempotency key cannot be checked');
      return this.p.outage.charge(accountId, costs, options.config);
    });
  }

  private async inStore(accountId: string, costs: readonly CostLine[], options: ChargeOptions): Promise<ChargeDecision> {
    const { config } = options;
    const cache = this.p.directory.cacheFor(config);
    // A cached account needs no store call (nor its promise), unless the store is down: then the outage policy decides, as before.
    const resolved =
      (this.p.guard.isOpen ? undefined : this.p.directory.resolveCached(accountId, config, options.plan)) ??
      (await this.p.guard.run(() => this.p.directory.resolve(accountId, config, options.plan)));
    if ('unknown' in resolved) {
      return resolved.unknown === 'account'
        ? { allowed: false, reason: 'unknown-account', accountId }
        : { allowed: false, reason: 'unknown-plan', accountId, plan: resolved.plan };
    }
    const now = this.p.now();
    const cycle = cycleContaining(resolved.anchor, now);
    const merged = mergeCosts(costs);
    // Releases wait for the upstream's answer: a DELETE of something that does not exist frees nothing.
    const lines = merged.filter((c) => c.op === 'charge');
    const releases = merged.filter((c) => c.op === 'release');
    const shadow = lines.map((c) => isShadow(config, options.route, c.creditType, now));

    // Outside the plan (quota 0 or absent), a consumable pool is filled by
    // top-ups only (the store draws it with limit 0); with no active grant it
    // is not in the plan. Refused here, with no store round trip, when that
    // is known: capacity pools take no top-ups, and this replica remembers
    // accounts found without a grant of the type (a top-up makes every
    // replica forget). Otherwise the charge script decides (grantTotal says which).
    const outsidePlan = lines.map((c, i) => !shadow[i]! && quotaOf(resolved.plan, c.creditType) === 0);
    const notInPlan = lines.filter((c, i) => outsidePlan[i] && (isCapacity(config, c.creditType) || cache.noGrant(accountId, c.creditType)));
    if (notInPlan.length > 0) {
      const empty = (t: string): PoolState => ({ creditType: t, planUsed: 0, grantTotal: 0, grantUsed: 0 });
      const short = notInPlan.map((c) => poolStatus(config, resolved.plan, cycle, c, empty(c.creditType)));
      return (await this.knownReplay(accountId, options.idempotency)) ?? { allowed: false, reason: 'not-in-plan', account: resolved, short };
    }

    const pools = lines.map((c, i) => poolCharge(config, resolved.plan, cycle, c, shadow[i]!));
    // A pool this replica knows to be empty refuses without a store round trip.
    const knownEmpty = lines
      .map((c, i) => (!shadow[i] && c.amount > 0 ? cache.emptyPool(accountId, resolved.plan.id, c.creditType, pools[i]!.cycleStart) : undefined))
      .filter((s): s is PoolStatus => s !== undefined);
    // A pool outside the plan that may have no grant is decided by the store first: not-in-plan comes before exhausted.
    const undecided = lines.some((c, i) => outsidePlan[i] && !knownEmpty.some((s) => s.creditType === c.creditType));
    if (knownEmpty.length > 0 && !undecided) {
      const short = knownEmpty.map((s) => ({ ...s, required: lines.find((c) => c.creditType === s.creditType)!.amount }));
      return (await this.knownReplay(accountId, options.idempotency)) ?? { allowed: false, reason: 'exhausted', account: resolved, short };
    }
    const request = options.idempotency;
    const epoch = cache.epoch(accountId);
    const claim = request ? { key: request.key, claim: newClaim() } : undefined;
    const outcome = await this.p.guard.run(() =>
      this.p.store.charge(accountId, pools, {
        now,
        thresholds: config.alerts.thresholds,
        // A lease, renewed while the request runs (IdempotencyLeases).
        ...(request && claim ? { idempotency: { ...claim, fingerprint: request.fingerprint, pendingTtlMs: IDEMPOTENCY_LEASE_MS } } : {}),
      }),
    );
    if (outcome.duplicate) return replayDecision(outcome.duplicate, request!.fingerprint);
    // Renewed while the request runs, up to its upstream timeout and a long stream after it.
    if (outcome.ok && claim) this.p.leases.start(accountId, claim, config.upstreamTimeoutMs + LEASE_RENEWAL_AFTER_TIMEOUT_MS);
    // A hold that took what remained asked for less: report what was held.
    const statuses = lines.map((c, i) =>
      poolStatus(config, resolved.plan, cycle, c.hold ? { ...c, amount: outcome.pools[i]!.charged || c.amount } : c, outcome.pools[i]!),
    );
    // Outside the plan with no active grant: not in the plan, and remembered as such.
    const noGrant = lines.map((_, i) => outsidePlan[i]! && outcome.pools[i]!.grantTotal === 0);
    // Remember empty pools and missing grants: the next request for them is refused locally.
    statuses.forEach((s, i) => {
      if (noGrant[i]) cache.rememberNoGrant(accountId, s.creditType, epoch);
      else if (s.remaining === 0 && s.allowance !== null && !shadow[i]) cache.rememberEmpty(accountId, resolved.plan.id, pools[i]!.cycleStart, s, epoch);
    });
    if (!outcome.ok) {
      // The store refuses such a pool whatever the amount (limit 0, no grant).
      if (noGrant.some(Boolean)) return { allowed: false, reason: 'not-in-plan', account: resolved, short: statuses.filter((_, i) => noGrant[i]) };
      return { allowed: false, reason: 'exhausted', account: resolved, short: statuses.filter((s) => s.remaining !== null && s.remaining < s.required) };
    }
    const shadowDenied: ShadowDenial[] = [];
    outcome.pools.forEach((p, i) => {
      const status = statuses[i]!;
      if (p.wouldRefuse)
        shadowDenied.push({ pool: status, reason: quotaOf(resolved.plan, status.creditType) === 0 && p.grantTotal === 0 ? 'not-in-plan' : 'exhausted' });
      this.p.observer?.creditsCharged(status.creditType, resolved.plan.id, p.charged);
    });
    const recorded = this.p.afterCharge.record(config, resolved, outcome.pools, statuses, now);
    if (recorded) await recorded;
    const receipt: ChargeReceipt = {
      account: accountId,
      plan: resolved.plan.id,
      idempotency: claim,
      lines: [
        ...lines.map((c, i) => ({
          creditType: c.creditType,
          op: c.op,
          cycleStart: pools[i]!.cycleStart,
          planDelta: outcome.pools[i]!.planDelta,
          draws: outcome.pools[i]!.draws,
          charged: outcome.pools[i]!.charged,
          settle: c.hold?.settle,
        })),
        ...releases.map(pendingRelease),
      ],
    };
    return { allowed: true, account: resolved, pools: statuses, shadowDenied, receipt };
  }

  /**
   * A refusal this replica could decide alone (a cached empty pool, a pool
   * outside the plan) must not hide a replay: a request whose key was used
   * before is answered as a replay whatever the pools say now.
   */
  private async knownReplay(accountId: string, idempotency: RequestIdempotency | undefined): Promise<ChargeRefusal | null> {
    if (!idempotency) return null;
    try {
      const record = await this.p.store.idempotencyRecord(accountId, idempotency.key);
      return record ? replayDecision(record, idempotency.fingerprint) : null;
    } catch (err) {
      // The store cannot say: the refusal this replica decided stands (never an outage pass).
      if (err instanceof StoreError) return null;
      throw err;
    }
  }
}

/** A key seen before: the same request is a replay; another request reusing the key is refused. */
function replayDecision(record: IdempotencyRecord, fingerprint: string): ChargeRefusal {
  if (record.fingerprint !== fingerprint) return { allowed: false, reason: 'idempotency-key-reused' };
  return { allowed: false, reason: 'duplicate', state: record.state, response: record.response };
}
