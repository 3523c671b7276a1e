// One redis-server for the whole run (or REDIS_URL when set). Test files
// share it under their own key prefixes and never flush it.

import type { TestProject } from 'vitest/node';
import { startRedis, type TestRedis } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let server: TestRedis | undefined;

export async function setup(project: TestProject): Promise<void> {
  if (!process.env.REDIS_URL) server = await startRedis();
  const url = process.env.REDIS_URL || server!.url;
  project.provide('redisUrl', url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
