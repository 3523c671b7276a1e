// SIGTERM with a request in flight: the request finishes, idle keep-alive
// connections are closed at once, queued alerts are flushed, exit code 0.

import { spawn } from 'node:child_process';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/redis-server.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { TEST_CONFIG, writeConfig } from '../helpers/sidecar-harness.js';
import { redisUrl } from '../helpers/test-redis.js';
import { serveArgs } from '../helpers/run-cli.js';

describe('graceful shutdown', () => {
  it('finishes the request in flight, refuses new connections, closes idle keep-alive ones and exits 0', async () => {
    const upstream = await startRecordingUpstream();
    let release: () => void = () => {};
    upstream.respond = (req, res) => {
      if (req.url === '/slow') {
        release = () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('finished');
        };
        return;
      }
      res.writeHead(200).end('ok');
    };
    const [port, adminPort] = [await freePort(), await freePort()];
    const child = spawn(
      process.execPath,
      serveArgs({ config: writeConfig(TEST_CONFIG), upstream: upstream.url, port, adminPort, redis: redisUrl() }),
      // A grace period far longer than the test: exiting early proves it did not wait for it.
      { env: { ...process.env, CREDITGATE_SHUTDOWN_GRACE_MS: '600000' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 100 && !out.includes('listening'); i++) await new Promise((r) => setTimeout(r, 50));
      // An idle keep-alive connection, as a client's pool would hold it.
      const agent = new http.Agent({ keepAlive: true });
      const warm = await fetchVia(agent, port, '/warm');
      expect(warm.status).toBe(200);

      const inFlight = fetchVia(new http.Agent(), port, '/slow');
      for (let i = 0; i < 100 && upstream.requests.every((r) => r.url !== '/slow'); i++) await new Promise((r) => setTimeout(r, 20));
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      // Not accepting any more.
      await expect(fetchVia(new http.Agent(), port, '/late')).rejects.toThrow(/ECONNREFUSED|ECONNRESET|socket hang up/);
      expect(child.exitCode).toBeNull();
      release();
      const done = await inFlight;
      expect(done.status).toBe(200);
      expect(done.body).toBe('finished');
      expect(await exited).toBe(0);
      expect(out).toContain('creditgate stopped');
      agent.destroy();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await upstream.close();
    }
  });
});

function fetchVia(agent: http.Agent, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
