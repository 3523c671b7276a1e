// The Lua sources in lua/, read once at startup. ioredis sends them with
// EVALSHA and reloads a script by itself when Redis answers NOSCRIPT.

import { readFileSync } from 'node:fs';

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
} as const;
