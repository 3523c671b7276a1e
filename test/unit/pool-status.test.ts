// Pure pool math: costs merged per pool, store charges built from a plan and
// a cycle, and a pool's stored state read as used / allowance / remaining.

import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/index.js';
import { COUNTER_GRACE_MS, mergeCosts, pendingRelease, poolCharge, poolStatus } from '../../src/engine/pool-status.js';

const config = loadConfigText(
  `version: 1
creditTypes:
  ai_tasks: { name: AI Task Credits }
  voice_minutes: { name: Voice Minutes }
  mailboxes: { name: Mailboxes, kind: capacity }
plans:
  basic: { ai_tasks: 100, mailboxes: 2 }
  big: { ai_tasks: unlimited, mailboxes: 5 }
`,
  'pool-status.yaml',
);
const basic = config.plans.get('basic')!;
const big = config.plans.get('big')!;
const cycle = { index: 0, start: 1_000_000, end: 1_000_000 + 30 * 86_400_000 };
const state = (planUsed: number, grantTotal = 0, grantUsed = 0) => ({ creditType: 'x', planUsed, grantTotal, grantUsed });

describe('mergeCosts', () => {
  it('adds lines of one pool and op, keeps first-seen order, keeps a hold', () => {
    const settle = { responseHeader: 'x', divideBy: 1, round: 'up' as const, onIncomplete: 'hold' as const };
    expect(
      mergeCosts([
        { creditType: 'b', amount: 1 },
        { creditType: 'a', amount: 2, hold: { minAmount: 1, settle } },
        { creditType: 'b', amount: 3 },
        { creditType: 'm', amount: 1, op: 'release' },
      ]),
    ).toEqual([
      { creditType: 'b', op: 'charge', amount: 4 },
      { creditType: 'a', op: 'charge', amount: 2, hold: { minAmount: 1, settle } },
      { creditType: 'm', op: 'release', amount: 1 },
    ]);
  });

  it('refuses a made-up cost above the maximum or below zero (a caller bug, never a store write)', () => {
    expect(() =>
      mergeCosts([
        { creditType: 'a', amount: 1e12 },
        { creditType: 'a', amount: 1 },
      ]),
    ).toThrow(RangeError);
    expect(() => mergeCosts([{ creditType: 'a', amount: -1 }])).toThrow(RangeError);
  });
});

describe('poolCharge', () => {
  it('a consumable charge carries the plan limit, the cycle and its expiry past the grace', () => {
    expect(poolCharge(config, basic, cycle, { creditType: 'ai_tasks', op: 'charge', amount: 5 }, false)).toEqual({
      creditType: 'ai_tasks',
      op: 'charge',
      amount: 5,
      limit: 100,
      cycleStart: cycle.start,
      expireAt: cycle.end + COUNTER_GRACE_MS,
      extras: true,
      shadow: false,
    });
  });

  it('capacity has one counter for all time; unlimited is a null limit; a hold takes down to its minimum', () => {
    expect(poolCharge(config, basic, cycle, { creditType: 'mailboxes', op: 'charge', amount: 1 }, false)).toMatchObject({
      cycleStart: 0,
      expireAt: 0,
      extras: false,
      limit: 2,
    });
    expect(poolCharge(config, big, cycle, { creditType: 'ai_tasks', op: 'charge', amount: 1 }, false).limit).toBeNull();
    const settle = { responseHeader: 'x', divideBy: 1, round: 'up' as const, onIncomplete: 'hold' as const };
    expect(poolCharge(config, basic, cycle, { creditType: 'ai_tasks', op: 'charge', amount: 3, hold: { minAmount: 5, settle } }, false).minAmount).toBe(3);
    expect(pendingRelease({ creditType: 'mailboxes', op: 'release', amount: 1 })).toEqual({
      creditType: 'mailboxes',
      op: 'release',
      cycleStart: 0,
      planDelta: 0,
      draws: [],
      charged: 1,
    });
  });
});

describe('poolStatus', () => {
  const status = (plan = basic, creditType = 'ai_tasks', s = state(0)) => poolStatus(config, plan, cycle, { creditType, op: 'charge', amount: 1 }, s);

  it('a plan pool with top-ups: allowance is plan + grants, remaining what can still be spent, reset at the cycle end', () => {
    expect(status(basic, 'ai_tasks', state(60, 50, 10))).toMatchObject({
      used: 70,
      allowance: 150,
      remaining: 80,
      resetsAt: cycle.end,
      windowSeconds: 30 * 86_400,
    });
  });

  it('use above a downgraded plan shows as the plan used up, so remaining never hides a debt', () => {
    expect(status(basic, 'ai_tasks', state(130, 20, 5))).toMatchObject({ used: 105, allowance: 120, remaining: 15 });
  });

  it('unlimited counts but has no allowance; capacity shows the real count and never resets', () => {
    expect(status(big, 'ai_tasks', state(7, 3, 2))).toMatchObject({ used: 9, allowance: null, remaining: null });
    expect(status(basic, 'mailboxes', state(3))).toMatchObject({ used: 3, allowance: 2, remaining: 0, resetsAt: null, windowSeconds: null });
  });

  it('outside the plan: filled by top-ups only (no reset without one)', () => {
    expect(status(basic, 'voice_minutes', state(0, 30, 10))).toMatchObject({ used: 10, allowance: 30, remaining: 20, resetsAt: cycle.end, topUpsOnly: true });
    expect(status(basic, 'voice_minutes', state(0))).toMatchObject({ allowance: 0, remaining: 0, resetsAt: null, topUpsOnly: true });
  });
});
