// `import { creditGate } from 'creditgate'` from another ESM/TS project:
// the exports map resolves to dist/ with types. Uses the built package.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve('.');

describe('package exports', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cg-consumer-'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(root, join(dir, 'node_modules', 'creditgate'), 'dir');
  });

  it('an ESM consumer imports creditGate and the stores by package name', () => {
    writeFileSync(
      join(dir, 'use.mjs'),
      "import { creditGate, RedisStore, MemoryStore, loadConfigText } from 'creditgate';\n" +
        // The memory store by name: no fallback warning on stderr.
        "const mw = await creditGate({ config: 'config/credits.example.yaml', store: 'memory' });\n" +
        'console.log(typeof mw, typeof RedisStore, typeof MemoryStore, typeof loadConfigText);\n' +
        'await mw.close();\n',
    );
    const r = spawnSync(process.execPath, [join(dir, 'use.mjs')], { cwd: root, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('function function function function');
  });

  it('a strict TypeScript consumer type-checks against the published types', () => {
    writeFileSync(
      join(dir, 'app.ts'),
      "import { creditGate, type CreditGateOptions, type ChargedRequest, type PoolStatus } from 'creditgate';\n" +
        "const options: CreditGateOptions = { config: 'credits.yaml', redis: 'redis://127.0.0.1:6379' };\n" +
        'const mw = await creditGate(options);\n' +
        'export function poolsOf(seen: ChargedRequest | undefined): readonly PoolStatus[] {\n' +
        '  return seen?.pools ?? [];\n' +
        '}\n' +
        'const pools = poolsOf(undefined);\n' +
        'export const n: number = pools.length + (mw.length as number);\n' +
        '// @ts-expect-error: config is required\n' +
        'await creditGate({});\n',
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
        },
        files: ['app.ts'],
      }),
    );
    const r = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
