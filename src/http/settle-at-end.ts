// The second phase of a held cost whose amount the body or a trailer carries:
// settled when the body ends, from what was read on the way. A body that did
// not end (client gone, upstream failed) or never carried the amount is
// settled by the rule's onIncomplete — the hold, or nothing — never above it.

import type { IncomingHttpHeaders } from 'node:http';
import { jsonSettledAmount, type SettleResult, settledAmount, settlesAtEnd } from '../domain/settle-rule.js';
import type { CreditEngine } from '../engine/credit-engine.js';
import type { ReceiptLine } from '../engine/types.js';
import type { Logger } from '../logger.js';
import type { AllowOutcome } from './gate-types.js';
import type { UsageRead } from './usage-reader.js';

export interface BodyEnd extends UsageRead {
  /** The whole body arrived; otherwise why it did not. */
  readonly complete: boolean;
  readonly reason?: 'client_abort' | 'connection_error';
  readonly trailers: IncomingHttpHeaders;
}

/** What the forwarder (or the middleware) needs to read the body for this settle. */
export interface EndOfBodySettle {
  /** JSON paths to read from the body or its events. */
  readonly paths: readonly string[];
  /** Most of a JSON body kept for reading (limits.maxBodyBytes). */
  readonly maxBytes: number;
  settle(end: BodyEnd): Promise<void>;
}

export function endSettledLines(allow: AllowOutcome): ReceiptLine[] {
  return (allow.receipt?.lines ?? []).filter((l) => l.op === 'charge' && l.settle !== undefined && settlesAtEnd(l.settle));
}

export function endOfBodySettle(engine: CreditEngine, logger: Logger, allow: AllowOutcome): EndOfBodySettle | undefined {
  const lines = endSettledLines(allow);
  if (lines.length === 0) return undefined;
  return {
    paths: [...new Set(lines.flatMap((l) => l.settle?.responseJson ?? []))],
    maxBytes: allow.config.maxBodyBytes,
    settle: (end) => settleAtEnd(engine, logger, allow, lines, end),
  };
}

function amountOf(line: ReceiptLine, end: BodyEnd): SettleResult {
  const rule = line.settle!;
  if (rule.responseTrailer !== undefined) {
    if (!end.complete) return { ok: false, reason: `the response ended before its ${rule.responseTrailer} trailer (${end.reason})` };
    return settledAmount(rule, end.trailers[rule.responseTrailer], `${rule.responseTrailer} trailer`);
  }
  if (end.tooLarge) return { ok: false, reason: 'the response body is larger than limits.maxBodyBytes: not read' };
  const read = jsonSettledAmount(rule, end.values);
  // Every path already had its value: what the client missed does not change what was used.
  if (!read.ok && !end.complete) return { ok: false, reason: `the response ended before its usage was known (${end.reason}): ${read.reason}` };
  return read;
}

async function settleAtEnd(engine: CreditEngine, logger: Logger, allow: AllowOutcome, lines: readonly ReceiptLine[], end: BodyEnd): Promise<void> {
  const { receipt, route, requestId } = allow;
  if (!receipt) return;
  const log = { requestId, route: route.name };
  if (!end.complete && end.reason === 'client_abort' && route.refundOn.includes('client_abort')) {
    await engine.refund(receipt, 'client_abort');
    logger.info({ ...log, outcome: 'refunded', reason: 'client_abort' }, 'client went away mid-response: charge refunded');
    return;
  }
  const actuals = new Map<string, number>();
  for (const line of lines) {
    const read = amountOf(line, end);
    if (read.ok) {
      actuals.set(line.creditType, read.amount);
      continue;
    }
    const onIncomplete = line.settle!.onIncomplete;
    // release: nothing is owed for an answer whose use is unknown; hold: the hold is the charge.
    if (onIncomplete === 'release') actuals.set(line.creditType, 0);
    logger.warn(
      { ...log, creditType: line.creditType, held: line.charged, onIncomplete, reason: read.reason },
      `cannot settle from the response: ${onIncomplete}`,
    );
  }
  if (actuals.size === 0) return;
  const settled = await engine.settle(receipt, actuals);
  for (const [creditType, { charged, overage }] of settled) {
    if (overage > 0) logger.warn({ ...log, creditType, charged, overage }, 'actual use above the hold: not charged (no overage beyond plan limits)');
  }
}
