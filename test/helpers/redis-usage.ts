// Reads an account's ai_tasks used this calendar month straight from a Redis
// (after a fault, with no sidecar in between).

import { RedisStore } from '../../src/store/redis-store.js';

export async function usedIn(url: string, account: string): Promise<number> {
  const store = new RedisStore({ url, timeoutMs: 2000 });
  await store.ready();
  try {
    const month = new Date();
    const start = Date.UTC(month.getUTCFullYear(), month.getUTCMonth(), 1);
    return (await store.usage(account, [{ creditType: 'ai_tasks', cycleStart: start }], Date.now()))[0]!.planUsed;
  } finally {
    await store.close();
  }
}
