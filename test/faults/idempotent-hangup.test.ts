// A client that hangs up once the upstream has answered whole, while the last
// chunk is still held back for the settle, can replay that answer with its
// Idempotency-Key: the answer was complete, only its delivery failed, and a
// retry after a dropped connection is what the key is for. Its own
// redis-server: CLIENT PAUSE holds the settle long enough for the hang-up to
// land inside it.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion, sleep } from '../helpers/ai-upstream.js';
import { startOwnRedisHarness, type OwnRedisHarness } from '../helpers/own-redis-harness.js';

const CONFIG = `version: 1
identity: { header: x-account-id }
store: { timeoutMs: 5000 }
defaultPlan: tiny
creditTypes:
  ai_tokens: { name: AI Tokens }
plans:
  tiny: { ai_tokens: 100000 }
routes:
  - name: chat
    method: POST
    path: /v1/chat/completions
    charge:
      ai_tokens:
        reserve: { body: max_tokens, default: 4096, max: 200000 }
        settle: { responseJson: usage.total_tokens }
`;

/** Sends the request and hangs up at the first chunk of the answer. */
function hangUpAtFirstChunk(url: string, account: string, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent: false, headers: { 'x-account-id': account, 'idempotency-key': key, 'content-type': 'application/json' } },
      (res) => {
        res.once('data', (chunk: Buffer) => {
          req.destroy();
          resolve(chunk.toString());
        });
      },
    );
    req.on('error', () => {});
    req.on('close', () => reject(new Error('closed before any chunk')));
    req.end('{"model":"fake","messages":[]}');
  });
}

describe('a hang-up while the last chunk waits for the settle', () => {
  let own: OwnRedisHarness;
  beforeAll(async () => {
    own = await startOwnRedisHarness(CONFIG, 'hangup');
  });
  afterAll(async () => own.close());

  it('keeps the whole answer: the retry with the same key replays it and is not charged again', async () => {
    const account = `hang-${randomUUID()}`;
    const key = randomUUID();
    const answer = JSON.stringify(chatCompletion(57));
    const cut = answer.indexOf('"usage"');
    own.h.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(answer)) });
      res.write(answer.slice(0, cut));
      void (async () => {
        await sleep(50);
        // Every write to Redis now waits 600 ms: the settle of this answer,
        // and whatever the sidecar writes when the client leaves.
        await own.admin.call('CLIENT', 'PAUSE', '600', 'WRITE');
        res.end(answer.slice(cut));
      })();
    };
    const first = await hangUpAtFirstChunk(`${own.h.proxy}/v1/chat/completions`, account, key);
    expect(answer.startsWith(first)).toBe(true);
    expect(first.length).toBeLessThan(answer.length);

    await sleep(900);
    const retry = await fetch(`${own.h.proxy}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'x-account-id': account, 'idempotency-key': key, 'content-type': 'application/json' },
      body: '{"model":"fake","messages":[]}',
    });
    expect(retry.status).toBe(200);
    expect(await retry.text()).toBe(answer);
    expect(own.h.upstream.requests.filter((r) => r.headers['idempotency-key'] === key)).toHaveLength(1);
    const usage = await (await own.h.adminFetch(`/v1/accounts/${account}/usage`)).json();
    expect(usage.pools.ai_tokens.used).toBe(57);
  });
});
