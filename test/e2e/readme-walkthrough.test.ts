// The walk-through (docs/walkthrough.md), run as written: its shell blocks are extracted,
// only the port numbers are moved to free ones, and its answers are checked.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/redis-server.js';
import { withoutRedisUrl } from '../helpers/test-redis.js';

function walkthroughScript(): string {
  const page = readFileSync('docs/walkthrough.md', 'utf8');
  const section = /<!-- walkthrough:start -->([\s\S]*?)<!-- walkthrough:end -->/.exec(page)?.[1];
  if (!section) throw new Error('docs/walkthrough.md has no walkthrough markers');
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
}

describe('README walk-through', () => {
  it('runs as written and shows spending, a 402, other pools working, not-in-plan and an upgrade', async () => {
    const [up, proxy, admin] = [await freePort(), await freePort(), await freePort()];
    const script = walkthroughScript()
      .replaceAll(':3000', `:${up}`)
      .replaceAll('--port 3000', `--port ${up}`)
      .replaceAll(':8080', `:${proxy}`)
      .replaceAll('--port 8080', `--port ${proxy}`)
      .replaceAll(':9090', `:${admin}`)
      .replaceAll('--admin-port 9090', `--admin-port ${admin}`);
    expect(script).not.toMatch(/\b(3000|8080|9090)\b/);

    // Its own process group, so nothing it starts can outlive the test.
    const child = spawn('bash', ['-c', `set -e\n${script}\nwait`], { detached: true, env: { ...withoutRedisUrl(), LOG_LEVEL: 'warn' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    // `kill %1 %2` then `wait`: both servers are gone when the script ends.
    const stillUp = await fetch(`http://127.0.0.1:${proxy}/`).then(
      () => true,
      () => false,
    );
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    expect(stillUp).toBe(false);
    expect(code).not.toBeNull();

    const responses = out.split(/(?=HTTP\/1\.1 )/).filter((s) => s.startsWith('HTTP/1.1'));
    expect(responses.map((r) => r.slice(9, 12))).toEqual(['200', '402', '200', '200']);
    expect(responses[0]).toMatch(/ratelimit: "ai_tasks";r=975;t=\d+/i);
    expect(responses[1]).toContain('"type":"https://creditgate.dev/problems/exhausted"');
    expect(responses[1]).toMatch(/retry-after: \d+/i);
    expect(responses[2]).toMatch(/ratelimit: "email_verification";r=1997;t=\d+/i);
    expect(out).toContain('"type":"https://creditgate.dev/problems/not-in-plan"');
    expect(out).toContain('"ai_tasks":{"used":25,"allowance":1000,"remaining":975');
    expect(out).toContain('"plan":"scale"');
    expect(responses[3]).toMatch(/ratelimit: "voice_minutes";r=45;t=\d+/i);
  });
});
