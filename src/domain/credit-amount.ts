// The largest amount of credits anything may carry: a plan quota, a cost, a
// hold, a top-up. One bound for every store, so that Redis (Lua) and the
// memory store (JavaScript) do the same arithmetic, exactly.
//
// Why 10^12:
// - Both sides compute in IEEE doubles (Lua 5.1 numbers, JS numbers), exact
//   for integers up to 2^53 ≈ 9.007·10^15. An amount is never alone: a
//   pool's allowance is the quota plus every active grant, its usage the plan
//   counter plus what was drawn from grants, and an unlimited or shadow pool
//   counts charge after charge. 10^12 leaves a factor of 9,000 before any of
//   these sums could leave the exact range.
// - Redis's cjson encodes numbers with 14 significant digits (%.14g):
//   123456789012345 would be written as 1.2345678901234e+14. The grant
//   records are written with integer formatting instead (lua/charge.lua,
//   topup.lua, refund.lua), but a 13-digit maximum is exact even through
//   cjson, so no path of the Lua code can round an amount.
// - The grant record also holds epoch-ms instants (expiry, creation): 13
//   digits today, 15 for an expiry after the year 5138. They are written with
//   integer formatting too, and stay exact up to 2^53 (any year up to 9999).
// - It is far above any real allowance (the reference plans top out at
//   50,000 a month) and reads at a glance: 1,000,000,000,000.

/** Largest amount of credits in a quota, cost, hold or top-up (10^12). */
export const MAX_CREDITS = 1_000_000_000_000;

/** "1,000,000,000,000": how messages name the maximum. */
export const MAX_CREDITS_TEXT = String(MAX_CREDITS).replace(/\B(?=(\d{3})+$)/g, ',');

/** A whole number of credits from `min` to MAX_CREDITS. */
export function isCreditAmount(n: unknown, min = 0): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= MAX_CREDITS;
}
