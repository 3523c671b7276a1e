// Starts a private redis-server on a free loopback port for tests, and stops
// it again. Never touches a Redis it did not start.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPing(url: string, child: ChildProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch {
      client.disconnect();
      if (Date.now() > until) throw new Error(`redis-server at ${url} did not answer`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function startRedis(extraArgs: string[] = [], options: { port?: number } = {}): Promise<TestRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = options.port ?? (await freePort());
    const dir = mkdtempSync(join(tmpdir(), 'creditgate-redis-'));
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs],
      { stdio: 'ignore' },
    );
    const url = `redis://127.0.0.1:${port}`;
    try {
      await waitForPing(url, child, 5000);
    } catch (err) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      if (attempt < 3 && options.port === undefined) continue;
      throw err;
    }
    return {
      url,
      port,
      pid: child.pid!,
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) {
            rmSync(dir, { recursive: true, force: true });
            resolve();
            return;
          }
          child.once('exit', () => {
            rmSync(dir, { recursive: true, force: true });
            resolve();
          });
          child.kill('SIGTERM');
        }),
    };
  }
}
