// The admin API as the CLI sees it: typed calls, and failures turned into
// sentences an operator can act on (wrong token, nothing listening, no such
// account) instead of stack traces.

import type { TopUpView, UsageView } from '../engine/credit-engine.js';
import type { AlertEvent } from '../store/credit-store.js';
import { CliError } from './cli-errors.js';

export interface AccountView {
  readonly id: string;
  readonly plan: string;
  readonly billingAnchor: string;
  readonly email?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | undefined,
  ) {}

  getAccount(id: string): Promise<AccountView> {
    return this.call('GET', `/v1/accounts/${encodeURIComponent(id)}`);
  }

  /** The account's record, or null when it has none. */
  async findAccount(id: string): Promise<AccountView | null> {
    try {
      return await this.getAccount(id);
    } catch (err) {
      if (err instanceof CliError && err.message.startsWith('no such account')) return null;
      throw err;
    }
  }

  putAccount(id: string, body: { plan: string; billingAnchor?: string; email?: string }): Promise<AccountView> {
    return this.call('PUT', `/v1/accounts/${encodeURIComponent(id)}`, body);
  }

  deleteAccount(id: string): Promise<void> {
    return this.call('DELETE', `/v1/accounts/${encodeURIComponent(id)}`);
  }

  usage(id: string): Promise<UsageView> {
    return this.call('GET', `/v1/accounts/${encodeURIComponent(id)}/usage`);
  }

  topUp(id: string, body: { creditType: string; amount: number; expiresAt?: string }, idempotencyKey?: string): Promise<TopUpView> {
    return this.call('POST', `/v1/accounts/${encodeURIComponent(id)}/topups`, body, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
  }

  async topUps(id: string): Promise<TopUpView[]> {
    return (await this.call<{ topUps: TopUpView[] }>('GET', `/v1/accounts/${encodeURIComponent(id)}/topups`)).topUps;
  }

  async events(id: string, limit: number): Promise<AlertEvent[]> {
    return (await this.call<{ events: AlertEvent[] }>('GET', `/v1/accounts/${encodeURIComponent(id)}/events?limit=${limit}`)).events;
  }

  private async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    if (!this.token) throw new CliError('set CREDITGATE_ADMIN_TOKEN to the admin token of the creditgate you are talking to', 2);
    const url = new URL(path, this.baseUrl);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new CliError(`cannot reach the admin API at ${this.baseUrl} (${cause}); is creditgate running, and is --admin-url right?`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let payload: { detail?: string; title?: string } & Record<string, unknown> = {};
    try {
      payload = JSON.parse(text) as typeof payload;
    } catch {
      // not JSON: reported below with the status
    }
    if (res.ok) return payload as T;
    if (res.status === 401) throw new CliError(`the admin API at ${this.baseUrl} refused the token (401): check CREDITGATE_ADMIN_TOKEN`);
    if (res.status === 403) throw new CliError(`the admin API at ${this.baseUrl} is disabled (403): start creditgate with CREDITGATE_ADMIN_TOKEN set`);
    if (res.status === 404 && path.startsWith('/v1/accounts/')) {
      throw new CliError(`no such account: ${decodeURIComponent(path.split('/')[3]!)} (${payload.detail ?? 'not found'})`);
    }
    throw new CliError(`${method} ${url.pathname} failed (${res.status}): ${payload.detail ?? payload.title ?? (text.slice(0, 200) || res.statusText)}`);
  }
}
