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
