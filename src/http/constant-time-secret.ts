// A secret compared in constant time: both sides are hashed first, so the
// compare sees equal-length buffers and leaks neither content nor length.

import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

export class ConstantTimeSecret {
  private readonly expected: Buffer | null;

  /** An unset or empty secret matches nothing. */
  constructor(secret: string | undefined) {
    this.expected = secret ? digest(secret) : null;
  }

  get isSet(): boolean {
    return this.expected !== null;
  }

  matches(given: string | undefined): boolean {
    if (!this.expected) return false;
    // Hash even when nothing was given: the same work either way.
    const same = timingSafeEqual(digest(given ?? ''), this.expected);
    return same && given !== undefined;
  }
}
