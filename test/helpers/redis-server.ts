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
  /** The data directory (AOF lives here). */
  readonly dir: string;
  /** Graceful stop; removes the data directory unless it was given. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash: the data directory stays for a restart. */
  kill(): Promise<void>;
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

export async function startRedis(extraArgs: string[] = [], options: { port?: number; dir?: string } = {}): Promise<TestRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = options.port ?? (await freePort());
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'creditgate-redis-'));
    const cleanup = () => {
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    };
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--enable-debug-command', 'local', ...extraArgs],
      { stdio: 'ignore' },
    );
    const url = `redis://127.0.0.1:${port}`;
    try {
      await waitForPing(url, child, 5000);
    } catch (err) {
      child.kill('SIGKILL');
      cleanup();
      if (attempt < 3 && options.port === undefined) continue;
      throw err;
    }
    const exited = () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
    return {
      url,
      port,
      pid: child.pid!,
      dir,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited();
        cleanup();
      },
      kill: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited();
      },
    };
  }
}
