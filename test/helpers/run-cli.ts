// Runs the built creditgate command as a child process without blocking the
// event loop (servers in this test process must keep answering it).

import { spawn } from 'node:child_process';

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/cli.js', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The built command's `serve` arguments for a loopback sidecar (spawned by the caller, who keeps the child). */
export function serveArgs(o: { config: string; upstream: string; port: number; adminPort: number; redis?: string }): string[] {
  const args = [
    'dist/cli.js',
    'serve',
    '--config',
    o.config,
    '--upstream',
    o.upstream,
    '--port',
    String(o.port),
    '--admin-port',
    String(o.adminPort),
    '--host',
    '127.0.0.1',
  ];
  return o.redis === undefined ? args : [...args, '--redis', o.redis];
}
