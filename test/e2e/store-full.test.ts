// The memory store at store.maxAccounts: a new account gets 503 store-full
// (problem+json, Retry-After, an error log line, a metric), is never
// forwarded and is charged nothing, even with an outage allowance; accounts
// already held keep working, and the admin API refuses to add one too.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfigObject } from '../../src/config/index.js';
import { CreditEngine } from '../../src/engine/credit-engine.js';
import { StoreError, type CreditStore } from '../../src/store/credit-store.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { captureLogger, type CapturedLogger } from '../helpers/capture-logger.js';
import { editConfig } from '../helpers/edit-config.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';

const MAX = 3;
// With an outage allowance on ai_tasks: a full store must not be treated as an outage.
const CONFIG = editConfig(
  TEST_CONFIG,
  ['store: { timeoutMs: 2000 }', `store: { timeoutMs: 2000, maxAccounts: ${MAX} }`],
  ['ai_tasks: { name: AI Task Credits,', 'ai_tasks: { name: AI Task Credits, onStoreError: { allow: 1000 },'],
);

function sample(text: string, line: RegExp): number {
  return Number(line.exec(text)?.[1]);
}

describe('memory store at store.maxAccounts (sidecar)', () => {
  let h: Harness;
  let log: CapturedLogger;
  beforeAll(async () => {
    expect(CONFIG).toContain(`maxAccounts: ${MAX}`);
    expect(CONFIG).toContain('onStoreError: { allow: 1000 }');
    log = captureLogger();
    h = await startHarness({ config: CONFIG, logger: log.logger });
  });
  afterAll(async () => h.close());

  const spend = (account: string, requestId: string) =>
    fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': account, 'x-task-count': '1', 'x-request-id': requestId } });
  const metrics = async () => (await fetch(`${h.admin}/metrics`)).text();
  const used = async (account: string) => (await (await h.adminFetch(`/v1/accounts/${account}/usage`)).json()).pools.ai_tasks.used as number;

  it('the account past the bound gets 503 store-full, is not forwarded and is counted; the others still get 200', async () => {
    expect(sample(await metrics(), /^creditgate_store_full_total (\d+)$/m)).toBe(0);
    for (let i = 1; i <= MAX; i++) expect((await spend(`acct-${i}`, `fill-${i}`)).status).toBe(200);

    const r = await spend('acct-new', 'over-the-bound');
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await r.json()).toMatchObject({ type: 'https://creditgate.dev/problems/store-full', title: 'Credit store full', status: 503 });
    expect(h.upstream.requests.filter((x) => x.headers['x-request-id'] === 'over-the-bound')).toHaveLength(0);
    const line = log.lines.find((l) => l.requestId === 'over-the-bound');
    expect(line).toMatchObject({ route: 'by-header', outcome: 'store_error', status: 503, level: 50 });

    const text = await metrics();
    expect(sample(text, /^creditgate_store_full_total (\d+)$/m)).toBe(1);
    expect(sample(text, /^creditgate_decisions_total\{route="by-header",credit_type="none",outcome="store_error"\} (\d+)$/m)).toBe(1);
    // Not an outage: no store error, the breaker closed, nothing journaled.
    expect(sample(text, /^creditgate_store_errors_total\{operation="charge"\} (\d+)$/m)).toBe(0);
    expect(sample(text, /^creditgate_store_breaker_open (\d+)$/m)).toBe(0);
    expect(sample(text, /^creditgate_outage_journal_entries (\d+)$/m)).toBe(0);

    // Accounts held keep working, and the new one was charged nothing.
    for (let i = 1; i <= MAX; i++) expect((await spend(`acct-${i}`, `again-${i}`)).status).toBe(200);
    expect(await used('acct-1')).toBe(2);
    expect(await used('acct-new')).toBe(0);
    expect((await spend('acct-new', 'still-full')).status).toBe(503);
  });

  it('the admin API cannot add an account either; it still serves and changes the ones held, and reads add nothing', async () => {
    const put = (id: string) => h.adminFetch(`/v1/accounts/${id}`, { method: 'PUT', body: JSON.stringify({ plan: 'big' }) });
    const topUp = (id: string) => h.adminFetch(`/v1/accounts/${id}/topups`, { method: 'POST', body: JSON.stringify({ creditType: 'ai_tasks', amount: 5 }) });

    const refusedPut = await put('admin-new');
    expect(refusedPut.status).toBe(503);
    expect(refusedPut.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(refusedPut.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await refusedPut.json()).type).toBe('https://creditgate.dev/problems/store-full');
    expect((await topUp('admin-new')).status).toBe(503);
    expect((await h.adminFetch('/v1/accounts/admin-new')).status).toBe(404);
    expect(log.lines.some((l) => l.msg === 'admin request refused: the memory store is full' && l.level === 50)).toBe(true);

    // Reads of an account the store does not hold answer and add nothing.
    expect((await h.adminFetch('/v1/accounts/reader/usage')).status).toBe(200);
    expect((await h.adminFetch('/v1/accounts/reader/topups')).status).toBe(200);

    // Held accounts: a record, a top-up, a plan that now lets them spend more.
    expect((await put('acct-1')).status).toBe(201);
    expect((await topUp('acct-2')).status).toBe(201);
    const big = await fetch(`${h.proxy}/v1/ai/custom`, { method: 'POST', headers: { 'x-account-id': 'acct-1', 'x-task-count': '50' } });
    expect(big.status).toBe(200);
    expect(sample(await metrics(), /^creditgate_store_full_total (\d+)$/m)).toBe(4);

    // Deleting a held account makes room for a new one.
    expect((await h.adminFetch('/v1/accounts/acct-3', { method: 'DELETE' })).status).toBe(204);
    expect((await spend('acct-new', 'room-again')).status).toBe(200);
    expect(h.upstream.requests.filter((x) => x.headers['x-request-id'] === 'room-again')).toHaveLength(1);
    expect((await spend('reader', 'reader-charge')).status).toBe(503);
  });
});

describe('outage journal replayed into a full memory store', () => {
  it('an entry for an account the store has no room for is dropped and counted; the others are written', async () => {
    const memory = new MemoryStore({ maxAccounts: 1 });
    let down = false;
    // The memory store behind a switch that makes every call fail like an unreachable store.
    const store = new Proxy(memory, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => (down ? Promise.reject(new StoreError('down')) : (value as (...a: unknown[]) => unknown).apply(target, args));
      },
    }) as CreditStore;
    const config = loadConfigObject(parse(CONFIG));
    const journal: { replayed: number; dropped: number; size: number } = { replayed: 0, dropped: 0, size: 0 };
    const engine = new CreditEngine({
      store,
      config: () => config,
      probeIntervalMs: 5,
      observer: {
        creditsCharged: () => {},
        creditsRefunded: () => {},
        unbilledOverage: () => {},
        topUpGranted: () => {},
        breaker: () => {},
        journalLost: () => {},
        journalKept: () => {},
        journalFileUnreadable: () => {},
        journal: (size, replayed, dropped) => {
          journal.size = size;
          journal.replayed += replayed;
          journal.dropped += dropped;
        },
      },
    });
    const charge = (account: string) => engine.charge(account, [{ creditType: 'ai_tasks', amount: 2 }], { config });
    expect((await charge('held')).allowed).toBe(true);
    down = true;
    // During the outage the allowance lets both through, journaled.
    expect(await charge('held')).toMatchObject({ allowed: true, receipt: { journalId: expect.any(Number) } });
    expect(await charge('newcomer')).toMatchObject({ allowed: true, receipt: { journalId: expect.any(Number) } });
    expect(journal.size).toBe(2);
    down = false;
    for (let i = 0; i < 400 && (engine.storeDown || journal.size > 0); i++) await new Promise((r) => setTimeout(r, 5));
    expect(engine.storeDown).toBe(false);
    expect(journal).toEqual({ size: 0, replayed: 1, dropped: 1 });
    expect((await engine.usage('held'))!.pools.ai_tasks!.used).toBe(4);
    expect((await engine.usage('newcomer'))!.pools.ai_tasks!.used).toBe(0);
    expect(memory.size).toBe(1);
    await engine.close();
    await memory.close();
  });
});
