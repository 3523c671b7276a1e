// A refund survives a store outage: Redis dies while the upstream works, the
// upstream then fails, and the refund that could not be written is kept in
// the outage journal and applied once Redis is back — freeing the request's
// Idempotency-Key in the same step. Across a restart of the sidecar the
// journal is kept in store.journalFile, or, without one, logged whole and
// counted as lost. Real redis-server processes (AOF), real sockets.

import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { captureLogger } from '../helpers/capture-logger.js';
import { expectUp } from '../helpers/checked-setup.js';
import { editConfig } from '../helpers/edit-config.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startHarness, TEST_CONFIG, type Harness } from '../helpers/sidecar-harness.js';
import { usedIn } from '../helpers/redis-usage.js';

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let redis: TestRedis | undefined;
const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
  await redis?.stop();
  redis = undefined;
});

const config = (journalFile?: string) =>
  editConfig(
    TEST_CONFIG,
    ['store: { timeoutMs: 2000 }', `store: { timeoutMs: 100${journalFile ? `, journalFile: "${journalFile}"` : ''} }`],
    ['tiny: { ai_tasks: 10,', 'tiny: { ai_tasks: 100000,'],
  );

const spend = (h: Harness, account: string, n: number, key?: string) =>
  fetch(`${h.proxy}/v1/ai/custom`, {
    method: 'POST',
    headers: { 'x-account-id': account, 'x-task-count': String(n), ...(key ? { 'idempotency-key': key } : {}) },
  }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });

/**
 * Spends 10, then sends 100 with `key` to an upstream that holds the
 * request; Redis is killed while it works, and the upstream then answers
 * 500. Returns the status the client got.
 */
async function refundDuringOutage(h: Harness, account: string, key: string): Promise<number> {
  expect(await spend(h, account, 10)).toBe(200);
  let fail: () => void = () => {};
  h.upstream.respond = (_req, res) => {
    fail = () => res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}');
  };
  const pending = spend(h, account, 100, key);
  for (let i = 0; i < 200 && !h.upstream.requests.some((r) => r.headers['idempotency-key'] === key); i++) await sleep(10);
  // Redis dies while the upstream holds the charged request, not before it got there.
  expect(
    h.upstream.requests.filter((r) => r.headers['idempotency-key'] === key),
    'the held request reached the upstream',
  ).toHaveLength(1);
  await redis!.kill();
  fail();
  const status = await pending;
  h.upstream.respond = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  return status;
}

describe('a refund survives a store outage', () => {
  it('Redis killed while the upstream works, upstream 500, Redis restarted: usage exact, the retry with the same key charged once', async () => {
    redis = await startRedis(AOF);
    const { port, dir } = redis;
    const h = await startHarness({ config: config(), redis: redis.url });
    harnesses.push(h);
    await expectUp(h);
    const account = `refund-${randomUUID()}`;
    const key = randomUUID();
    expect(await refundDuringOutage(h, account, key)).toBe(500);
    expect(h.sidecar.engine.journalSize).toBe(1);
    // While the store cannot say whether the key was used, a keyed retry is refused, not forwarded.
    expect(await spend(h, account, 100, key)).toBe(503);

    redis = await startRedis(AOF, { port, dir });
    for (let i = 0; i < 100 && h.sidecar.engine.journalSize > 0; i++) await sleep(50);
    expect(h.sidecar.engine.journalSize).toBe(0);
    // The refund was applied: only the first 10 stand, not 110.
    expect(await usedIn(redis.url, account)).toBe(10);
    // The key was freed in the same step: the retry is charged, once.
    expect(await spend(h, account, 100, key)).toBe(200);
    expect(await spend(h, account, 100, key)).toBe(200);
    expect(await usedIn(redis.url, account)).toBe(110);
    expect(h.upstream.requests.filter((r) => r.headers['idempotency-key'] === key)).toHaveLength(2);
  });

  it('across a restart of the sidecar: kept in store.journalFile and applied once by the next run', async () => {
    redis = await startRedis(AOF);
    const { port, dir } = redis;
    const journalFile = join(mkdtempSync(join(tmpdir(), 'cg-journal-')), 'journal.json');
    const first = await startHarness({ config: config(journalFile), redis: redis.url });
    await expectUp(first);
    const account = `kept-${randomUUID()}`;
    expect(await refundDuringOutage(first, account, randomUUID())).toBe(500);
    await first.close();
    const kept = JSON.parse(readFileSync(journalFile, 'utf8'));
    expect(kept.entries).toHaveLength(1);
    expect(kept.entries[0]).toMatchObject({ kind: 'refund', account, lines: [{ creditType: 'ai_tasks', planDelta: 100 }] });

    redis = await startRedis(AOF, { port, dir });
    const second = await startHarness({ config: config(journalFile), redis: redis.url });
    await expectUp(second);
    harnesses.push(second);
    for (let i = 0; i < 100 && second.sidecar.engine.journalSize > 0; i++) await sleep(50);
    expect(second.sidecar.engine.journalSize).toBe(0);
    expect(existsSync(journalFile)).toBe(false);
    expect(await usedIn(redis.url, account)).toBe(10);
  });

  it('without a journal file, what is left at shutdown is logged whole and counted as lost', async () => {
    redis = await startRedis(AOF);
    const logs = captureLogger();
    const h = await startHarness({ config: config(), redis: redis.url, logger: logs.logger });
    await expectUp(h);
    const account = `lost-${randomUUID()}`;
    expect(await refundDuringOutage(h, account, randomUUID())).toBe(500);
    await h.close();
    const lost = logs.lines.filter((l) => l.msg === 'outage journal entry lost: apply it by hand');
    expect(lost).toHaveLength(1);
    expect(lost[0]!.journalEntry).toMatchObject({ kind: 'refund', account, lines: [{ creditType: 'ai_tasks', planDelta: 100 }] });
    expect(typeof (lost[0]!.journalEntry as { refundId: unknown }).refundId).toBe('string');
    const metrics = await h.sidecar.metrics.registry.metrics();
    expect(metrics).toMatch(/^creditgate_outage_journal_lost_total\{kind="refund"\} 1$/m);
  });
});
