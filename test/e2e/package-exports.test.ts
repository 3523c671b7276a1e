// The package as an adopter meets it: `npm pack`, then installed into a fresh
// app beside the peers it asks for (ioredis 6, express 5) and nothing else
// of ours. `import` and `require('creditgate')` both work; a strict
// TypeScript app type-checks passing its own ioredis 6 client; and that
// client carries real charges against a real Redis.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { redisUrl, uniquePrefix } from '../helpers/test-redis.js';

const root = resolve('.');
const npm = (args: string[], cwd: string) =>
  execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('the packed package in a fresh app', () => {
  let app: string;
  let files: string[];
  beforeAll(() => {
    const packDir = mkdtempSync(join(tmpdir(), 'cg-pack-'));
    const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', packDir], root)) as { filename: string; files: { path: string }[] }[];
    files = packed[0]!.files.map((f) => f.path);
    app = mkdtempSync(join(tmpdir(), 'cg-app-'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'adopter', private: true, version: '1.0.0' }));
    npm(
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        join(packDir, packed[0]!.filename),
        'ioredis@^6',
        'express@^5',
        '@types/express@^5',
        '@types/node@^24',
      ],
      app,
    );
  }, 180_000);

  it('ships a LICENSE, the Lua scripts and the built code, and no source maps pointing at sources it does not ship', () => {
    expect(files).toContain('LICENSE');
    expect(files).toContain('lua/charge.lua');
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
    // The peers are the app's own: one ioredis, version 6.
    expect(existsSync(join(app, 'node_modules/creditgate/node_modules/ioredis'))).toBe(false);
    expect(readdirSync(join(app, 'node_modules/ioredis'))).toContain('package.json');
  });

  it('require() and import both load it, from CommonJS and ESM files, with nothing on stderr', () => {
    writeFileSync(
      join(app, 'use.cjs'),
      "const { creditGate, MemoryStore, RedisStore } = require('creditgate');\nconsole.log(typeof creditGate, typeof MemoryStore, typeof RedisStore);\n",
    );
    writeFileSync(
      join(app, 'use.mjs'),
      "import { creditGate, MemoryStore, RedisStore } from 'creditgate';\nconsole.log(typeof creditGate, typeof MemoryStore, typeof RedisStore);\n",
    );
    for (const file of ['use.cjs', 'use.mjs']) {
      const r = spawnSync(process.execPath, [file], { cwd: app, encoding: 'utf8' });
      expect(r.stderr, file).toBe('');
      expect(r.stdout.trim(), file).toBe('function function function');
    }
  });

  it('a strict TypeScript app type-checks passing its own ioredis 6 client, as ESM and as CommonJS', () => {
    const source =
      "import { Redis } from 'ioredis';\n" +
      "import express from 'express';\n" +
      "import { creditGate, RedisStore, type CreditGateOptions, type ChargedRequest } from 'creditgate';\n" +
      "const client = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });\n" +
      "const options: CreditGateOptions = { config: 'credits.yaml', redis: client };\n" +
      'export const store = new RedisStore({ client });\n' +
      'export async function mount(app: express.Express): Promise<void> {\n' +
      '  app.use(await creditGate(options));\n' +
      "  app.get('/x', (_req, res) => res.json((res.locals.credits as ChargedRequest | undefined)?.pools ?? []));\n" +
      '}\n' +
      '// @ts-expect-error: config is required\n' +
      'void creditGate({});\n';
    for (const [name, module, type] of [
      ['esm', 'NodeNext', 'module'],
      ['cjs', 'NodeNext', 'commonjs'],
    ] as const) {
      const dir = join(app, name);
      execFileSync('mkdir', ['-p', dir]);
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type }));
      writeFileSync(join(dir, 'app.ts'), source);
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module,
            moduleResolution: 'NodeNext',
            target: 'ES2022',
            strict: true,
            noEmit: true,
            esModuleInterop: true,
            skipLibCheck: false,
            types: ['node'],
          },
          files: ['app.ts'],
        }),
      );
      const r = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: app, encoding: 'utf8' });
      expect(r.stdout + r.stderr, name).toBe('');
      expect(r.status, name).toBe(0);
    }
    // Two full type checks of the app and its dependencies' types: slow on a busy 2-core machine.
  }, 120_000);

  it('an ioredis 6 client passed in carries real charges, refusals and usage (RESP3, its default)', () => {
    writeFileSync(
      join(app, 'charge.mjs'),
      `import { Redis } from 'ioredis';
import { creditGate } from 'creditgate';
const client = new Redis(process.env.URL);
const config = {
  version: 1,
  defaultPlan: 'tiny',
  creditTypes: { ai_tasks: { name: 'AI Task Credits' } },
  plans: { tiny: { ai_tasks: 5 } },
  routes: [{ name: 'run', method: 'POST', path: '/run', charge: { ai_tasks: 2 } }],
};
const gate = await creditGate({ config, redis: client, keyPrefix: process.env.PREFIX });
const results = [];
for (let i = 0; i < 3; i++) {
  const d = await gate.engine.charge('acct', [{ creditType: 'ai_tasks', amount: 2 }]);
  results.push(d.allowed ? 'allowed' : d.reason);
}
const usage = await gate.engine.usage('acct');
console.log(JSON.stringify({ results, used: usage.pools.ai_tasks.used, version: JSON.parse((await import('node:fs')).readFileSync('node_modules/ioredis/package.json', 'utf8')).version }));
await gate.close();
client.disconnect();
`,
    );
    const r = spawnSync(process.execPath, ['charge.mjs'], {
      cwd: app,
      encoding: 'utf8',
      env: { ...process.env, URL: redisUrl(), PREFIX: uniquePrefix('pack') },
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { results: string[]; used: number; version: string };
    expect(out.version).toMatch(/^6\./);
    expect(out.results).toEqual(['allowed', 'allowed', 'exhausted']);
    expect(out.used).toBe(4);
  });
});
