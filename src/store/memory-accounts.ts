// The accounts the memory store holds and their bound: a slot per account in
// the AccountTable with its AccountState, the exhausted marks by slot, the
// budget of kept responses, and the sweep that drops what has ended.
//
// Bounded without ever handing out credits: nothing live is dropped (an
// account record never is). A sweep, at most `sweepStep` accounts per timer
// tick and going on where the last tick stopped, drops what has ended:
// counters of cycles past their expiry, expired grants, idempotency keys and
// alert marks, an events feed 90 days after its last event; an account left
// with nothing goes. At `maxAccounts` a new account is refused
// (StoreFullError, a 503 store-full); accounts held keep working.

import { StoreFullError } from './credit-store.js';
import { AccountTable } from './account-table.js';
import { AccountState } from './memory-account-state.js';

export interface MemoryStoreOptions {
  /** Clock for key expiry; tests move it. */
  readonly now?: () => number;
  /** How often a sweep step runs (ms). Default 1,000. */
  readonly sweepIntervalMs?: number;
  /** Accounts one sweep step looks at, at most; the next step goes on from there. Default 10,000. */
  readonly sweepStep?: number;
  /**
   * Accounts held at most (config `store.maxAccounts`; default 1,000,000).
   * At the bound a new account is refused with StoreFullError; nothing held
   * is dropped to make room. A function is asked at each new account.
   */
  readonly maxAccounts?: number | (() => number);
  /**
   * Bytes of first responses kept for idempotent replays, at most, over all
   * accounts. Past it a completed request keeps no response (its replays get
   * 409): memory stays bounded however many keys one account sends. Default 256 MiB.
   */
  readonly maxKeptResponseBytes?: number;
}

/** What MemoryStore builds on: the accounts held, the bound on them and the sweep. */
export abstract class MemoryAccounts {
  protected readonly accounts = new AccountTable<AccountState>();
  /** credit type -> slot of the account -> until (epoch ms); an account's marks go with its slot. */
  protected readonly exhausted = new Map<string, Map<number, number>>();
  protected readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly sweepIntervalMs: number;
  private readonly sweepStep: number;
  /** The next slot a sweep step looks at. */
  private cursor = 0;
  private readonly maxAccounts: () => number;
  protected readonly maxKeptResponseBytes: number;
  protected keptResponseBytes = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxKeptResponseBytes = options.maxKeptResponseBytes ?? 256 * 1024 * 1024;
    const max = options.maxAccounts ?? 1_000_000;
    this.maxAccounts = typeof max === 'number' ? () => max : max;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 1000;
    this.sweepStep = Math.max(1, options.sweepStep ?? 10_000);
    this.sweeper = setInterval(() => this.sweep(), this.sweepIntervalMs);
    this.sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  /** Accounts held in memory, for tests and diagnostics. */
  get size(): number {
    return this.accounts.size;
  }

  /** The account's slot; a new one needs room. */
  protected claim(account: string): number {
    const slot = this.accounts.slotOf(account) ?? this.accounts.add(account, this.maxAccounts());
    if (slot !== undefined) return slot;
    // Room comes back as the sweep finds accounts with nothing live: one round over all of them.
    const round = Math.ceil(this.accounts.end / this.sweepStep) * this.sweepIntervalMs;
    throw new StoreFullError(
      `the memory store holds its maximum of ${this.maxAccounts()} accounts (store.maxAccounts): a new account cannot be added`,
      Math.max(1, Math.ceil(round / 1000)),
    );
  }

  protected stateOf(slot: number): AccountState {
    let state = this.accounts.extrasAt(slot);
    if (!state) {
      state = new AccountState();
      this.accounts.setExtras(slot, state);
    }
    return state;
  }

  /** What the account has besides counters, if it is held; never makes an entry. */
  protected existing(account: string): AccountState | undefined {
    const slot = this.accounts.slotOf(account);
    return slot === undefined ? undefined : this.accounts.extrasAt(slot);
  }

  /**
   * One sweep step: looks at the next `sweepStep` slots, drops what has
   * ended there, and the accounts left with nothing. Never a pass over all
   * accounts at once; the next step goes on where this one stopped.
   */
  private sweep(): void {
    const now = this.now();
    const end = Math.min(this.cursor + this.sweepStep, this.accounts.end);
    for (let slot = this.cursor; slot < end; slot++) {
      if (!this.accounts.holds(slot)) continue;
      const noCounters = this.accounts.sweepCounters(slot, now);
      if (this.accounts.extrasAt(slot)?.sweep(now, (bytes) => (this.keptResponseBytes -= bytes))) this.accounts.setExtras(slot, undefined);
      let marked = false;
      for (const byType of this.exhausted.values()) {
        const until = byType.size === 0 ? undefined : byType.get(slot);
        if (until === undefined) continue;
        if (until <= now) byType.delete(slot);
        else marked = true;
      }
      if (noCounters && !marked && this.accounts.extrasAt(slot) === undefined) this.drop(slot);
    }
    this.cursor = end >= this.accounts.end ? 0 : end;
  }

  /** Removes an account and its exhausted marks (its slot may go to another account next). */
  protected drop(slot: number): void {
    this.keptResponseBytes -= this.accounts.extrasAt(slot)?.keptBytes() ?? 0;
    for (const byType of this.exhausted.values()) byType.delete(slot);
    this.accounts.remove(slot);
  }
}
