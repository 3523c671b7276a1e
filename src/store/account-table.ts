// The memory store's accounts, packed so that a million of them fit in a
// small process: a Map from account id to a slot number, each slot's first
// two plan counters in typed arrays (credit type, cycle start, used, expiry:
// no object per account or per counter), and anything else the account has
// in an object of its own, made only when needed. Measured by
// bench/memory-store-rss.mjs.

/** Plan counters per account kept in the typed arrays; more go to a per-account overflow array. */
const INLINE = 2;
/** Slots the typed arrays start with; they double as needed, up to the bound. */
const FIRST_CAPACITY = 1024;

/** Whether a counter expiring at `expireAt` (0 = never) still counts at `now`. */
const alive = (expireAt: number, now: number) => expireAt === 0 || expireAt > now;

export class AccountTable<E> {
  private readonly slots = new Map<string, number>();
  /** slot -> account id (undefined: the slot is free). */
  private readonly ids: (string | undefined)[] = [];
  /** slot -> what the account has besides its counters. */
  private readonly extras: (E | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  /** Credit type -> its number in the counters (from 1; 0 marks an empty cell). */
  private readonly typeIds = new Map<string, number>();
  private capacity = 0;
  // Cell i of slot s is s * INLINE + i.
  private types = new Uint32Array(0);
  private starts = new Float64Array(0);
  private used = new Float64Array(0);
  private expiries = new Float64Array(0);
  /** Counters beyond INLINE, per slot: [type, cycleStart, used, expireAt] repeated. Rare. */
  private readonly overflow = new Map<number, number[]>();

  /** Accounts held. */
  get size(): number {
    return this.slots.size;
  }

  /** Slots ever handed out (a sweep cursor runs over 0 … end − 1). */
  get end(): number {
    return this.ids.length;
  }

  slotOf(account: string): number | undefined {
    return this.slots.get(account);
  }

  accountAt(slot: number): string | undefined {
    return this.ids[slot];
  }

  /** A slot for a new account, or undefined when `max` accounts are held. */
  add(account: string, max: number): number | undefined {
    if (this.slots.size >= max) return undefined;
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.ids.length;
      this.ids.push(account);
      this.extras.push(undefined);
      if (slot >= this.capacity) this.grow(slot + 1, max);
    } else {
      this.ids[slot] = account;
    }
    this.slots.set(account, slot);
    return slot;
  }

  remove(slot: number): void {
    const account = this.ids[slot];
    if (account === undefined) return;
    this.slots.delete(account);
    this.ids[slot] = undefined;
    this.extras[slot] = undefined;
    this.types.fill(0, slot * INLINE, slot * INLINE + INLINE);
    this.overflow.delete(slot);
    this.freeSlots.push(slot);
  }

  extrasAt(slot: number): E | undefined {
    return this.extras[slot];
  }

  setExtras(slot: number, value: E | undefined): void {
    this.extras[slot] = value;
  }

  /** Credits used on the counter, 0 when there is none or it has expired. */
  counter(slot: number, creditType: string, cycleStart: number, now: number): number {
    const type = this.typeIds.get(creditType);
    if (type === undefined) return 0;
    const base = slot * INLINE;
    for (let c = base; c < base + INLINE; c++) {
      if (this.types[c] === type && this.starts[c] === cycleStart) return alive(this.expiries[c]!, now) ? this.used[c]! : 0;
    }
    const more = this.overflow.get(slot);
    if (more) {
      for (let k = 0; k < more.length; k += 4) {
        if (more[k] === type && more[k + 1] === cycleStart) return alive(more[k + 3]!, now) ? more[k + 2]! : 0;
      }
    }
    return 0;
  }

  /** When the counter expires (0 = never), or undefined when there is none or it has expired. */
  counterExpiry(slot: number, creditType: string, cycleStart: number, now: number): number | undefined {
    const type = this.typeIds.get(creditType);
    if (type === undefined) return undefined;
    const base = slot * INLINE;
    for (let c = base; c < base + INLINE; c++) {
      if (this.types[c] === type && this.starts[c] === cycleStart) return alive(this.expiries[c]!, now) ? this.expiries[c] : undefined;
    }
    const more = this.overflow.get(slot);
    if (more) {
      for (let k = 0; k < more.length; k += 4) {
        if (more[k] === type && more[k + 1] === cycleStart) return alive(more[k + 3]!, now) ? more[k + 3] : undefined;
      }
    }
    return undefined;
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
    const base = slot * INLINE;
    for (let c = base; c < base + INLINE; c++) {
      if (this.types[c] === type && this.starts[c] === cycleStart) {
        if (value === 0) this.types[c] = 0;
        else this.writeCell(c, type, cycleStart, value, expireAt);
        return;
      }
    }
    const more = this.overflow.get(slot);
    if (more) {
      for (let k = 0; k < more.length; k += 4) {
        if (more[k] === type && more[k + 1] === cycleStart) {
          if (value === 0) this.dropOverflow(slot, more, k);
          else {
            more[k + 2] = value;
            more[k + 3] = expireAt;
          }
          return;
        }
      }
    }
    if (value === 0) return;
    // A new counter: an empty or expired cell, else the overflow.
    for (let c = base; c < base + INLINE; c++) {
      if (this.types[c] === 0 || !alive(this.expiries[c]!, now)) {
        this.writeCell(c, type, cycleStart, value, expireAt);
        return;
      }
    }
    if (more) more.push(type, cycleStart, value, expireAt);
    else this.overflow.set(slot, [type, cycleStart, value, expireAt]);
  }

  /** Drops the slot's expired counters (and moves overflow into free cells); true when it has none left. */
  sweepCounters(slot: number, now: number): boolean {
    const base = slot * INLINE;
    for (let c = base; c < base + INLINE; c++) if (this.types[c] !== 0 && !alive(this.expiries[c]!, now)) this.types[c] = 0;
    const more = this.overflow.get(slot);
    if (more) {
      for (let k = more.length - 4; k >= 0; k -= 4) if (!alive(more[k + 3]!, now)) more.splice(k, 4);
      for (let c = base; c < base + INLINE && more.length > 0; c++) {
        if (this.types[c] === 0) {
          const [type, start, value, expireAt] = more.splice(more.length - 4, 4) as [number, number, number, number];
          this.writeCell(c, type, start, value, expireAt);
        }
      }
      if (more.length === 0) this.overflow.delete(slot);
    }
    for (let c = base; c < base + INLINE; c++) if (this.types[c] !== 0) return false;
    return !this.overflow.has(slot);
  }

  private writeCell(c: number, type: number, cycleStart: number, value: number, expireAt: number): void {
    this.types[c] = type;
    this.starts[c] = cycleStart;
    this.used[c] = value;
    this.expiries[c] = expireAt;
  }

  private dropOverflow(slot: number, more: number[], k: number): void {
    more.splice(k, 4);
    if (more.length === 0) this.overflow.delete(slot);
  }

  /** Doubles the typed arrays (never past the bound unless `slots` needs it). */
  private grow(slots: number, max: number): void {
    const capacity = Math.max(slots, Math.min(Math.max(FIRST_CAPACITY, this.capacity * 2), max));
    const resize = <T extends Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity * INLINE);
      next.set(old);
      return next;
    };
    this.types = resize(this.types, (n) => new Uint32Array(n));
    this.starts = resize(this.starts, (n) => new Float64Array(n));
    this.used = resize(this.used, (n) => new Float64Array(n));
    this.expiries = resize(this.expiries, (n) => new Float64Array(n));
    this.capacity = capacity;
  }
}
