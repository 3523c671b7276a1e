// The Lua sources in lua/, read once at startup, and the commands they
// become on a client. ioredis sends them with EVALSHA and reloads a script by
// itself when Redis answers NOSCRIPT.

import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import type { Reply } from './redis-replies.js';

function readLua(name: string): string {
  // Resolves from src/store and from dist/store alike: both are two levels down.
  return readFileSync(new URL(`../../lua/${name}.lua`, import.meta.url), 'utf8');
}

export const LUA = {
  charge: readLua('charge'),
  topup: readLua('topup'),
  usage: readLua('usage'),
  refund: readLua('refund'),
  idempotency: readLua('idempotency'),
  billing: readLua('billing'),
  mark: readLua('mark'),
} as const;

/** The scripts as commands of a client. */
export interface CreditgateCommands {
  creditgateCharge(numKeys: number, ...args: (string | number)[]): Promise<Reply>;
  creditgateTopup(numKeys: number, ...args: (string | number)[]): Promise<Reply>;
  creditgateUsage(numKeys: number, ...args: (string | number)[]): Promise<Reply>;
  creditgateRefund(numKeys: number, ...args: (string | number)[]): Promise<number>;
  creditgateIdempotency(numKeys: number, ...args: (string | number)[]): Promise<number>;
  creditgateBilling(numKeys: number, ...args: (string | number)[]): Promise<string>;
  creditgateMark(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

/** Defines the scripts as commands on `c`, those it does not have yet. */
export function defineCommands(c: (Redis | Cluster) & Partial<CreditgateCommands>): void {
  if (typeof c.creditgateCharge !== 'function') c.defineCommand('creditgateCharge', { lua: LUA.charge });
  if (typeof c.creditgateTopup !== 'function') c.defineCommand('creditgateTopup', { lua: LUA.topup });
  if (typeof c.creditgateUsage !== 'function') c.defineCommand('creditgateUsage', { lua: LUA.usage });
  if (typeof c.creditgateRefund !== 'function') c.defineCommand('creditgateRefund', { lua: LUA.refund });
  if (typeof c.creditgateIdempotency !== 'function') c.defineCommand('creditgateIdempotency', { lua: LUA.idempotency });
  if (typeof c.creditgateBilling !== 'function') c.defineCommand('creditgateBilling', { lua: LUA.billing });
  if (typeof c.creditgateMark !== 'function') c.defineCommand('creditgateMark', { lua: LUA.mark });
}
