// Account id -> slot number for the memory store, without a JS string or a
// Map entry per account. A Map keyed by the ids would keep one string (about
// 32 bytes) and one entry (about 30) per account, and a million strings that
// survive their request make V8 grow its young generation to the maximum
// (another 100 MB of RSS). Here an id's characters are copied into one byte
// arena and found through an open-addressing hash index (linear probing) of
// typed arrays: an account costs its id's length plus about 13 bytes.
//
// Ids are visible ASCII in practice (src/domain/account-id.ts); any id of
// 1–254 Latin-1 characters is packed, anything else goes to an ordinary Map.

/** lengths[] marker for a slot whose id lives in the `wide` Map. */
const WIDE = 255;
/** lengths[] marker for a free slot. */
const FREE = 0;
const FIRST_SLOTS = 1024;
const FIRST_ARENA = 16 * 1024;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the id's characters, or -1 when the id is not packed (empty, too long, beyond Latin-1). */
function packedHash(id: string): number {
  if (id.length === 0 || id.length >= WIDE) return -1;
  let h = FNV_OFFSET;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c > 0xff) return -1;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h >>> 0;
}

export class AccountIds {
  private arena = new Uint8Array(FIRST_ARENA);
  private arenaEnd = 0;
  /** Bytes of removed ids still in the arena: compacted away once they are half of it. */
  private garbage = 0;
  // Per slot: where the id starts in the arena, and its length (or WIDE, or FREE).
  private offsets = new Uint32Array(FIRST_SLOTS);
  private lengths = new Uint8Array(FIRST_SLOTS);
  /** Hash index: slot + 1, 0 = empty. Kept at most half full. */
  private index = new Int32Array(2 * FIRST_SLOTS);
  private packed = 0;
  private readonly wide = new Map<string, number>();
  private readonly wideIds = new Map<number, string>();
  private readonly free: number[] = [];
  private slotsEnd = 0;
  private count = 0;

  /** Ids held. */
  get size(): number {
    return this.count;
  }

  /** Slots ever handed out: every slot in use is below this. */
  get end(): number {
    return this.slotsEnd;
  }

  has(slot: number): boolean {
    return slot < this.slotsEnd && this.lengths[slot] !== FREE;
  }

  slotOf(id: string): number | undefined {
    const h = packedHash(id);
    if (h < 0) return this.wide.get(id);
    const mask = this.index.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = this.index[i]!;
      if (e === 0) return undefined;
      const s = e - 1;
      if (this.lengths[s] === id.length && this.equals(s, id)) return s;
    }
  }

  /** Adds an id that is not held yet; returns its slot (a freed one first). */
  add(id: string): number {
    const slot = this.free.pop() ?? this.slotsEnd++;
    if (slot >= this.lengths.length) this.growSlots(slot + 1);
    this.count += 1;
    const h = packedHash(id);
    if (h < 0) {
      this.lengths[slot] = WIDE;
      this.wide.set(id, slot);
      this.wideIds.set(slot, id);
      return slot;
    }
    if (this.arenaEnd + id.length > this.arena.length) this.makeRoom(id.length);
    const at = this.arenaEnd;
    for (let i = 0; i < id.length; i++) this.arena[at + i] = id.charCodeAt(i);
    this.arenaEnd += id.length;
    this.offsets[slot] = at;
    this.lengths[slot] = id.length;
    this.packed += 1;
    if (2 * this.packed > this.index.length) this.rehash(2 * this.index.length);
    this.insert(slot, h);
    return slot;
  }

  remove(slot: number): void {
    const length = this.lengths[slot];
    if (length === undefined || length === FREE) return;
    if (length === WIDE) {
      this.wide.delete(this.wideIds.get(slot)!);
      this.wideIds.delete(slot);
    } else {
      this.unindex(slot);
      this.garbage += length;
      this.packed -= 1;
    }
    this.lengths[slot] = FREE;
    this.free.push(slot);
    this.count -= 1;
  }

  private equals(slot: number, id: string): boolean {
    const at = this.offsets[slot]!;
    for (let i = 0; i < id.length; i++) if (this.arena[at + i] !== id.charCodeAt(i)) return false;
    return true;
  }

  /** The hash of a packed id, from its bytes in the arena (the same as packedHash of the string). */
  private hashAt(slot: number): number {
    const at = this.offsets[slot]!;
    const end = at + this.lengths[slot]!;
    let h = FNV_OFFSET;
    for (let i = at; i < end; i++) h = Math.imul(h ^ this.arena[i]!, FNV_PRIME);
    return h >>> 0;
  }

  private insert(slot: number, hash: number): void {
    const mask = this.index.length - 1;
    let i = hash & mask;
    while (this.index[i] !== 0) i = (i + 1) & mask;
    this.index[i] = slot + 1;
  }

  /** Takes the slot out of the index, shifting later entries of its probe run back (no tombstones). */
  private unindex(slot: number): void {
    const mask = this.index.length - 1;
    let i = this.hashAt(slot) & mask;
    while (this.index[i] !== slot + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; this.index[j] !== 0; j = (j + 1) & mask) {
      const e = this.index[j]!;
      const home = this.hashAt(e - 1) & mask;
      // An entry whose home lies cyclically in (i, j] is still reachable; any other moves into the hole.
      const reachable = i <= j ? i < home && home <= j : i < home || home <= j;
      if (!reachable) {
        this.index[i] = e;
        i = j;
      }
    }
    this.index[i] = 0;
  }

  private rehash(size: number): void {
    this.index = new Int32Array(size);
    for (let s = 0; s < this.slotsEnd; s++) {
      const length = this.lengths[s]!;
      if (length !== FREE && length !== WIDE) this.insert(s, this.hashAt(s));
    }
  }

  /** Room for `extra` more bytes: compacts when removed ids are half the arena, else grows it by half. */
  private makeRoom(extra: number): void {
    const compact = 2 * this.garbage >= this.arenaEnd;
    const needed = (compact ? this.arenaEnd - this.garbage : this.arenaEnd) + extra;
    let size = this.arena.length;
    while (size < needed) size = Math.ceil(size * 1.5);
    const next = new Uint8Array(size);
    if (!compact) {
      next.set(this.arena.subarray(0, this.arenaEnd));
    } else {
      let end = 0;
      for (let s = 0; s < this.slotsEnd; s++) {
        const length = this.lengths[s]!;
        if (length === FREE || length === WIDE) continue;
        const at = this.offsets[s]!;
        next.set(this.arena.subarray(at, at + length), end);
        this.offsets[s] = end;
        end += length;
      }
      this.arenaEnd = end;
      this.garbage = 0;
    }
    this.arena = next;
  }

  private growSlots(slots: number): void {
    let size = this.lengths.length;
    while (size < slots) size *= 2;
    const grow = <T extends Uint8Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old);
      return next;
    };
    this.offsets = grow(this.offsets, (n) => new Uint32Array(n));
    this.lengths = grow(this.lengths, (n) => new Uint8Array(n));
  }
}
