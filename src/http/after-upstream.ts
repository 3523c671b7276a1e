// After the upstream answered (or failed): capacity released when the answer
// confirms it, the charge refunded when the answer says it is not owed, held
// pools settled from the response headers (or, for a body or trailer, handed
// the settle that runs when the body ends), and the idempotency key completed
// with the response a replay will get.

import type { IncomingHttpHeaders } from 'node:http';
import { type RefundReason, refundReason, releaseConfirmed, type UpstreamResult } from '../domain/refund-policy.js';
import { settledAmount } from '../domain/settle-rule.js';
import type { CreditEngine } from '../engine/credit-engine.js';
import type { ChargeReceipt } from '../engine/types.js';
import type { Logger } from '../logger.js';
import type { AllowOutcome, FinishResult } from './gate-types.js';
import { endOfBodySettle } from './settle-at-end.js';
import { rateLimitHeaders } from './ratelimit-headers.js';
import { encodeResponse, keepable, type SentResponse } from './stored-response.js';

export class AfterUpstream {
  constructor(
    private readonly engine: CreditEngine,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  /**
   * Refund, settle, release. Returns the RateLimit headers as they stand
   * afterwards. Awaited before the client sees a status, so a usage read
   * right after the response sees the final numbers. When none of them needs
   * the store (the usual 2xx), the result comes back at once, not as a promise.
   */
  finish(allow: AllowOutcome, result: UpstreamResult, responseHeaders: IncomingHttpHeaders = {}): FinishResult | Promise<FinishResult> {
    const { receipt, route } = allow;
    if (!receipt) return { headers: { ...allow.headers }, kept: false };
    const reason = refundReason(result, route.refundOn, route.chargeWhen);
    const inStore = reason !== null || receipt.lines.some((l) => l.op === 'release' || l.settle?.responseHeader !== undefined);
    if (!inStore) return { headers: { ...allow.headers }, kept: true, atEnd: endOfBodySettle(this.engine, this.logger, allow) };
    return this.finishInStore(allow, receipt, result, reason, responseHeaders).catch((err: unknown) => {
      // Nothing will complete the request's idempotency key now: let its lease lapse.
      this.engine.abandon(receipt);
      throw err;
    });
  }

  private async finishInStore(
    allow: AllowOutcome,
    receipt: ChargeReceipt,
    result: UpstreamResult,
    reason: RefundReason | null,
    responseHeaders: IncomingHttpHeaders,
  ): Promise<FinishResult> {
    const { route } = allow;
    // Only a request that released capacity has a release to confirm (no promise otherwise).
    if (receipt.lines.some((l) => l.op === 'release')) await this.confirmRelease(allow, result);
    if (reason) {
      await this.engine.refund(receipt, reason);
      this.logger.info(
        { requestId: allow.requestId, route: route.name, outcome: 'refunded', reason, upstream: 'status' in result ? result.status : result.error },
        'charge refunded',
      );
      return { headers: this.headersAfterReturning(allow, new Map(receipt.lines.map((l) => [l.creditType, l.charged]))), kept: false };
    }
    const actuals = new Map<string, number>();
    for (const line of receipt.lines) {
      // A body or trailer settles when the body ends (settleAtEnd).
      if (!line.settle?.responseHeader) continue;
      const settled = settledAmount(line.settle, responseHeaders[line.settle.responseHeader.toLowerCase()]);
      if (settled.ok) actuals.set(line.creditType, settled.amount);
      else
        this.logger.warn(
          { requestId: allow.requestId, route: route.name, creditType: line.creditType, held: line.charged, reason: settled.reason },
          'cannot settle: keeping the hold',
        );
    }
    const settled = actuals.size > 0 ? await this.engine.settle(receipt, actuals) : new Map<string, { charged: number; overage: number }>();
    for (const [creditType, { charged, overage }] of settled) {
      if (overage > 0) {
        this.logger.warn(
          { requestId: allow.requestId, route: route.name, creditType, charged, overage },
          'actual use above the hold: not charged (no overage beyond plan limits)',
        );
      }
    }
    const atEnd = endOfBodySettle(this.engine, this.logger, allow);
    if (settled.size === 0) return { headers: { ...allow.headers }, kept: true, atEnd };
    const held = new Map(receipt.lines.map((l) => [l.creditType, l.charged]));
    return {
      headers: this.headersAfterReturning(allow, new Map([...settled].map(([type, s]) => [type, (held.get(type) ?? 0) - s.charged]))),
      kept: true,
      atEnd,
    };
  }

  /** Gives back the capacity the request released when the upstream's answer confirms it (releaseWhen). */
  async confirmRelease(allow: AllowOutcome, result: UpstreamResult): Promise<void> {
    const { receipt, route } = allow;
    if (!receipt?.lines.some((l) => l.op === 'release')) return;
    if (releaseConfirmed(result, route.releaseWhen)) await this.engine.release(receipt);
    else
      this.logger.info(
        { requestId: allow.requestId, route: route.name, upstream: 'status' in result ? result.status : result.error },
        'release not confirmed by the upstream: capacity kept',
      );
  }

  /**
   * The response to a kept charge has been sent (or given up on): its
   * idempotency key becomes "done", with the response for replays when it
   * could be kept. A no-op for requests without a key.
   */
  async complete(allow: AllowOutcome, response: SentResponse | null): Promise<void> {
    const receipt = allow.receipt;
    if (!receipt?.idempotency) return;
    const max = allow.config.idempotency.maxResponseBytes;
    const kept =
      response && response.body.length <= max && keepable(response.headers, max) ? encodeResponse(response.status, response.headers, response.body) : undefined;
    await this.engine.complete(receipt, allow.config, kept);
  }

  /** The RateLimit fields once `returned` credits per pool are back in them. */
  private headersAfterReturning(allow: AllowOutcome, returned: ReadonlyMap<string, number>): Record<string, string> {
    const pools = allow.pools
      .filter((p) => p.op === 'charge')
      .map((p) => {
        const amount = returned.get(p.creditType) ?? 0;
        return amount <= 0 || p.remaining === null ? p : { ...p, used: p.used - amount, remaining: p.remaining + amount };
      });
    return rateLimitHeaders(pools, this.now());
  }
}
