import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-redis.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Two cores: more workers only contend for them.
    maxWorkers: 2,
  },
});
