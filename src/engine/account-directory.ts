// Which plan and billing anchor apply to an account, read through the
// per-replica cache, and every replica told when an account changes.

import type { CompiledConfig } from '../config/compiled-config.js';
import { CALENDAR_MONTH_ANCHOR_ISO, parseAnchor } from '../domain/billing-cycle.js';
import type { AccountRecord, CreditStore } from '../store/credit-store.js';
import { Invalidations } from './invalidations.js';
import { AccountStateCache } from './local-cache.js';
import type { ResolvedAccount } from './types.js';

const CALENDAR_MONTH = parseAnchor(CALENDAR_MONTH_ANCHOR_ISO);

export type Resolution = ResolvedAccount | { unknown: 'account' } | { unknown: 'plan'; plan: string };

export class AccountDirectory {
  private readonly cache: AccountStateCache;
  private readonly invalidations: Invalidations;
  /** The config the cache was filled under: a reload may change any plan, so it starts empty. */
  private cachedUnder: CompiledConfig;

  constructor(
    private readonly store: CreditStore,
    private readonly config: () => CompiledConfig,
    now: () => number,
  ) {
    const { accountTtlMs, maxAccounts } = config().parsed.cache;
    this.cache = new AccountStateCache({ now, accountTtlMs, maxAccounts });
    this.invalidations = new Invalidations(store, this.cache);
    this.cachedUnder = config();
  }

  /** Hears every replica's announcements; caching is on only while they are heard. */
  async listen(): Promise<void> {
    if (this.config().parsed.cache.accountTtlMs === 0) return;
    await this.invalidations.listen();
  }

  async close(): Promise<void> {
    await this.invalidations.close();
  }

  /** The cache for decisions under `config`: a reload empties it first. */
  cacheFor(config: CompiledConfig): AccountStateCache {
    if (config !== this.cachedUnder) {
      this.cachedUnder = config;
      this.cache.clear();
    }
    return this.cache;
  }

  /**
   * The plan and billing anchor that apply. `planOverride` (a verified
   * token's plan claim) replaces the record's plan; the anchor still comes
   * from the record, or calendar months without one.
   */
  async resolve(accountId: string, config: CompiledConfig, planOverride?: string): Promise<Resolution> {
    return this.resolution(accountId, config, await this.record(accountId, config), planOverride);
  }

  /** What `resolve` gives, when the cache holds the account's record; otherwise undefined (no store call). */
  resolveCached(accountId: string, config: CompiledConfig, planOverride?: string): Resolution | undefined {
    const cached = this.cacheFor(config).record(accountId);
    return cached === undefined ? undefined : this.resolution(accountId, config, cached, planOverride);
  }

  private resolution(accountId: string, config: CompiledConfig, record: AccountRecord | null, planOverride: string | undefined): Resolution {
    if (planOverride !== undefined) {
      const plan = config.plans.get(planOverride);
      if (!plan) return { unknown: 'plan', plan: planOverride };
      return { id: accountId, plan, record, anchor: record ? parseAnchor(record.billingAnchor) : CALENDAR_MONTH };
    }
    if (record) {
      const plan = config.plans.get(record.plan);
      if (!plan) return { unknown: 'plan', plan: record.plan };
      return { id: accountId, plan, record, anchor: parseAnchor(record.billingAnchor) };
    }
    const fallback = config.defaultPlan === undefined ? undefined : config.plans.get(config.defaultPlan);
    if (!fallback) return { unknown: 'account' };
    return { id: accountId, plan: fallback, record: null, anchor: CALENDAR_MONTH };
  }

  /** Everything any replica remembers about the account is dropped. */
  async announce(account: string): Promise<void> {
    await this.invalidations.announce(account);
  }

  /**
   * Runs a change to an account, then makes every replica forget the
   * account — also when the change failed, since a store that timed out
   * may still have applied it.
   */
  async announcing<T>(account: string, change: () => Promise<T>): Promise<T> {
    try {
      return await change();
    } finally {
      await this.announce(account);
    }
  }

  private async record(accountId: string, config: CompiledConfig): Promise<AccountRecord | null> {
    const cache = this.cacheFor(config);
    const cached = cache.record(accountId);
    if (cached !== undefined) return cached;
    const epoch = cache.epoch(accountId);
    const record = await this.store.getAccount(accountId);
    cache.rememberRecord(accountId, record, epoch);
    return record;
  }
}
