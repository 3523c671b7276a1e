// The memory store's accounts, packed so that a million of them fit in a
// small process: account ids map to slot numbers (AccountIds: no string or
// Map entry per account), each slot's first two plan counters sit in typed
// arrays (no object per account or per counter), and anything else the
// account has is in an object of its own, made only when needed. Measured
// by bench/memory-store-rss.mjs.

import { AccountIds } from './account-ids.js';

/** Plan counters per account kept in the typed arrays; more go to a per-account overflow array. */
const INLINE = 2;
/** Slots the typed arrays start with; they double as needed, up to the bound. */
const FIRST_CAPACITY = 1024;
/** Largest epoch ms a cell holds (whole seconds in a Uint32, the rest in a Uint16): the year 2106. */
const MAX_CELL_MS = 0xffffffff * 1000;

/** Whether a counter expiring at `expireAt` (0 = never) still counts at `now`. */
const alive = (expireAt: number, now: number) => expireAt === 0 || expireAt > now;
const cellMs = (ms: number) => Number.isInteger(ms) && ms >= 0 && ms < MAX_CELL_MS;

/**
 * Whether a counter fits a cell exactly: a credit type numbered up to
 * 0xffff, whole-ms instants before 2106, a whole count below 2^32. Anything
 * else (never seen in practice) lives in the overflow as plain numbers.
 */
const fitsCell = (type: number, cycleStart: number, used: number, expireAt: number) =>
  type <= 0xffff && cellMs(cycleStart) && cellMs(expireAt) && Number.isInteger(used) && used >= 0 && used <= 0xffffffff;

export class AccountTable<E> {
  private readonly ids = new AccountIds();
  /** slot -> what the account has besides its counters (most accounts have nothing else). */
  private readonly extras = new Map<number, E>();
  /** Credit type -> its number in the counters (from 1; 0 marks an empty cell). */
  private readonly typeIds = new Map<string, number>();
  private capacity = 0;
  // Cell i of slot s is s * INLINE + i: credit type (0 = empty), cycle start
  // and expiry as whole seconds plus ms, credits used. 18 bytes a counter.
  private types = new Uint16Array(0);
  private startS = new Uint32Array(0);
  private startMs = new Uint16Array(0);
  private expireS = new Uint32Array(0);
  private expireMs = new Uint16Array(0);
  private used = new Uint32Array(0);
  /** Counters beyond INLINE (or not fitting a cell), per slot: [type, cycleStart, used, expireAt] repeated. Rare. */
  private readonly overflow = new Map<number, number[]>();

  /** Accounts held. */
  get size(): number {
    return this.ids.size;
  }

  /** Slots ever handed out (a sweep cursor runs over 0 … end − 1). */
  get end(): number {
    return this.ids.end;
  }

  slotOf(account: string): number | undefined {
    return this.ids.slotOf(account);
  }

  /** Whether the slot holds an account. */
  holds(slot: number): boolean {
    return this.ids.has(slot);
  }

  /** A slot for a new account, or undefined when `max` accounts are held. */
  add(account: string, max: number): number | undefined {
    if (this.ids.size >= max) return undefined;
    const slot = this.ids.add(account);
    if (slot >= this.capacity) this.grow(slot + 1, max);
    return slot;
  }

  remove(slot: number): void {
    if (!this.ids.has(slot)) return;
    this.ids.remove(slot);
    this.extras.delete(slot);
    this.types.fill(0, slot * INLINE, slot * INLINE + INLINE);
    this.overflow.delete(slot);
  }

  extrasAt(slot: number): E | undefined {
    return this.extras.get(slot);
  }

  setExtras(slot: number, value: E | undefined): void {
    if (value === undefined) this.extras.delete(slot);
    else this.extras.set(slot, value);
  }

  /** Credits used on the counter, 0 when there is none or it has expired. */
  counter(slot: number, creditType: string, cycleStart: number, now: number): number {
    const type = this.typeIds.get(creditType);
    if (type === undefined) return 0;
    const c = this.cellOf(slot, type, cycleStart);
    if (c >= 0) return alive(this.expiry(c), now) ? this.used[c]! : 0;
    const more = this.overflow.get(slot);
    const k = more ? overflowIndex(more, type, cycleStart) : -1;
    return k >= 0 && alive(more![k + 3]!, now) ? more![k + 2]! : 0;
  }

  /** When the counter expires (0 = never), or undefined when there is none or it has expired. */
  counterExpiry(slot: number, creditType: string, cycleStart: number, now: number): number | undefined {
    const type = this.typeIds.get(creditType);
    if (type === undefined) return undefined;
    const c = this.cellOf(slot, type, cycleStart);
    const more = c >= 0 ? undefined : this.overflow.get(slot);
    const k = more ? overflowIndex(more, type, cycleStart) : -1;
    const expireAt = c >= 0 ? this.expiry(c) : k >= 0 ? more![k + 3]! : undefined;
    return expireAt !== undefined && alive(expireAt, now) ? expireAt : undefined;
  }

  /**
   * Writes a counter (a new value and its expiry). A counter at 0 is not
   * kept: reading it gives 0 all the same.
   */
  setCounter(slot: number, creditType: string, cycleStart: number, value: number, expireAt: number, now: number): void {
    let type = this.typeIds.get(creditType);
    if (type === undefined) {
      if (value === 0) return;
      type = this.typeIds.size + 1;
      this.typeIds.set(creditType, type);
    }
    const fits = fitsCell(type, cycleStart, value, expireAt);
    const c = this.cellOf(slot, type, cycleStart);
    if (c >= 0) {
      if (value !== 0 && fits) {
        this.writeCell(c, type, cycleStart, value, expireAt);
        return;
      }
      this.types[c] = 0;
      if (value === 0) return;
    } else {
      const more = this.overflow.get(slot);
      const k = more ? overflowIndex(more, type, cycleStart) : -1;
      if (k >= 0) {
        if (value === 0) this.dropOverflow(slot, more!, k);
        else {
          more![k + 2] = value;
          more![k + 3] = expireAt;
        }
        return;
      }
      if (value === 0) return;
      // A new counter: an empty or expired cell, else the overflow.
      for (let e = slot * INLINE; e < slot * INLINE + INLINE && fits; e++) {
        if (this.types[e] === 0 || !alive(this.expiry(e), now)) {
          this.writeCell(e, type, cycleStart, value, expireAt);
          return;
        }
      }
    }
    const more = this.overflow.get(slot);
    if (more) more.push(type, cycleStart, value, expireAt);
    else this.overflow.set(slot, [type, cycleStart, value, expireAt]);
  }

  /** Drops the slot's expired counters (and moves overflow into free cells); true when it has none left. */
  sweepCounters(slot: number, now: number): boolean {
    const base = slot * INLINE;
    for (let c = base; c < base + INLINE; c++) if (this.types[c] !== 0 && !alive(this.expiry(c), now)) this.types[c] = 0;
    const more = this.overflow.get(slot);
    if (more) {
      for (let k = more.length - 4; k >= 0; k -= 4) if (!alive(more[k + 3]!, now)) more.splice(k, 4);
      for (let c = base; c < base + INLINE; c++) {
        if (this.types[c] !== 0) continue;
        let k = more.length - 4;
        while (k >= 0 && !fitsCell(more[k]!, more[k + 1]!, more[k + 2]!, more[k + 3]!)) k -= 4;
        if (k < 0) break;
        const [type, start, value, expireAt] = more.splice(k, 4) as [number, number, number, number];
        this.writeCell(c, type, start, value, expireAt);
      }
      if (more.length === 0) this.overflow.delete(slot);
    }
    for (let c = base; c < base + INLINE; c++) if (this.types[c] !== 0) return false;
    return !this.overflow.has(slot);
  }

  /** The slot's cell holding this counter, or -1. */
  private cellOf(slot: number, type: number, cycleStart: number): number {
    for (let c = slot * INLINE; c < slot * INLINE + INLINE; c++) {
      if (this.types[c] === type && this.startS[c]! * 1000 + this.startMs[c]! === cycleStart) return c;
    }
    return -1;
  }

  private expiry(c: number): number {
    return this.expireS[c]! * 1000 + this.expireMs[c]!;
  }

  private writeCell(c: number, type: number, cycleStart: number, value: number, expireAt: number): void {
    this.types[c] = type;
    const startS = Math.floor(cycleStart / 1000);
    this.startS[c] = startS;
    this.startMs[c] = cycleStart - startS * 1000;
    const expireS = Math.floor(expireAt / 1000);
    this.expireS[c] = expireS;
    this.expireMs[c] = expireAt - expireS * 1000;
    this.used[c] = value;
  }

  private dropOverflow(slot: number, more: number[], k: number): void {
    more.splice(k, 4);
    if (more.length === 0) this.overflow.delete(slot);
  }

  /** Doubles the typed arrays (never past the bound unless `slots` needs it). */
  private grow(slots: number, max: number): void {
    const capacity = Math.max(slots, Math.min(Math.max(FIRST_CAPACITY, this.capacity * 2), max));
    const resize = <T extends Uint16Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity * INLINE);
      next.set(old);
      return next;
    };
    this.types = resize(this.types, (n) => new Uint16Array(n));
    this.startS = resize(this.startS, (n) => new Uint32Array(n));
    this.startMs = resize(this.startMs, (n) => new Uint16Array(n));
    this.expireS = resize(this.expireS, (n) => new Uint32Array(n));
    this.expireMs = resize(this.expireMs, (n) => new Uint16Array(n));
    this.used = resize(this.used, (n) => new Uint32Array(n));
    this.capacity = capacity;
  }
}

/** Where the counter is in an overflow array, or -1. */
function overflowIndex(more: readonly number[], type: number, cycleStart: number): number {
  for (let k = 0; k < more.length; k += 4) if (more[k] === type && more[k + 1] === cycleStart) return k;
  return -1;
}
