// A real 3-primary Redis Cluster on loopback ports, for the store contract
// suite: three redis-server processes joined by `redis-cli --cluster create`.

import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from './redis-server.js';

export interface TestCluster {
  readonly nodes: readonly TestRedis[];
  /** redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 */
  readonly url: string;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

export async function startCluster(): Promise<TestCluster> {
  const nodes: TestRedis[] = [];
  for (let i = 0; i < 3; i++) {
    nodes.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${process.pid}-${i}.conf`, '--cluster-node-timeout', '2000']));
  }
  const created = await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
  if (created.code !== 0) throw new Error(`cluster create failed: ${created.out}`);
  for (const node of nodes) {
    const client = new Redis(node.url);
    try {
      for (let i = 0; ; i++) {
        const info = (await client.call('CLUSTER', 'INFO')) as string;
        if (info.includes('cluster_state:ok')) break;
        if (i > 100) throw new Error(`cluster never became ok on ${node.url}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      client.disconnect();
    }
  }
  return {
    nodes,
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
