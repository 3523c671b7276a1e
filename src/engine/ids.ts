// Ids the engine makes: time-ordered and unguessable ("tu_<time><random>").

import { randomBytes } from 'node:crypto';

export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}

/** A request's claim on its idempotency key: unique per charge. */
export function newClaim(): string {
  return randomBytes(12).toString('base64url');
}
