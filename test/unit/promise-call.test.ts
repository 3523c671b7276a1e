import { describe, expect, it } from 'vitest';
import { promiseCall } from '../../src/promise-call.js';

describe('promiseCall', () => {
  it('hands back the promise the function returns, with the arguments given', async () => {
    const p = Promise.resolve(3);
    expect(promiseCall((x: Promise<number>) => x, p)).toBe(p);
    await expect(promiseCall(async (a: number, b: number) => a + b, 2, 5)).resolves.toBe(7);
  });

  it('turns a synchronous throw into a rejection instead of throwing', async () => {
    const boom = new Error('boom');
    let pending: Promise<number> | undefined;
    expect(() => {
      pending = promiseCall((): Promise<number> => {
        throw boom;
      });
    }).not.toThrow();
    await expect(pending).rejects.toBe(boom);
  });
});
