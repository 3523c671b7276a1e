// Bearer-token check for the admin API. Both sides are hashed before the
// constant-time compare so that neither the content nor the length of the
// real token leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

export class AdminToken {
  private readonly expected: Buffer | null;

  /** An unset or empty token disables the admin API (403), never opens it. */
  constructor(token: string | undefined) {
    this.expected = token ? digest(token) : null;
  }

  get enabled(): boolean {
    return this.expected !== null;
  }

  matches(authorization: string | undefined): boolean {
    if (!this.expected || !authorization) return false;
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    const given = digest(m ? m[1]! : '');
    return timingSafeEqual(given, this.expected) && m !== null;
  }
}
