// Per-file access to the run's Redis: a unique key prefix so files never see
// each other's keys, and clients that are closed after the file.

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';

export function redisUrl(): string {
  return inject('redisUrl');
}

export function uniquePrefix(label: string): string {
  return `cgtest:${label}:${randomUUID().slice(0, 8)}`;
}

export function newClient(): Redis {
  return new Redis(redisUrl(), { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
}

/** This process's environment without REDIS_URL: a child started with it counts in memory. */
export function withoutRedisUrl(): NodeJS.ProcessEnv {
  const { REDIS_URL: _ignored, ...env } = process.env;
  return env;
}
