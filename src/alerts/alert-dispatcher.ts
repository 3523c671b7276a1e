// Delivers alert events by webhook and e-mail, off the request path: a
// bounded queue, a few deliveries at a time, retries with exponential
// backoff and jitter. When the queue is full the oldest delivery is dropped
// (and counted): a stuck receiver must not grow memory without bound.

import nodemailer, { type Transporter } from 'nodemailer';
import type { AlertsConfig } from '../config/compiled-config.js';
import { resolveSecret } from '../config/secret-ref.js';
import type { AlertSink, ResolvedAccount } from '../engine/credit-engine.js';
import type { Logger } from '../logger.js';
import type { AlertEvent } from '../store/credit-store.js';
import { alertEmail } from './alert-email.js';
import { SIGNATURE_HEADER, signPayload } from './webhook-signature.js';

export type AlertChannel = 'webhook' | 'email';
export type DeliveryResult = 'sent' | 'retried' | 'failed' | 'dropped';

interface Job {
  readonly channel: AlertChannel;
  readonly event: AlertEvent;
  /** E-mail recipient. */
  readonly to?: string;
  attempt: number;
}

export interface AlertDispatcherOptions {
  readonly config: () => AlertsConfig;
  readonly logger: Logger;
  /** Called for every delivery outcome (metrics hook). */
  readonly onResult?: (channel: AlertChannel, result: DeliveryResult) => void;
  /** First retry delay; doubles each attempt, capped at 60 s. Default 1 s. */
  readonly retryBaseMs?: number;
  readonly concurrency?: number;
}

export class AlertDispatcher implements AlertSink {
  private readonly ready: Job[] = [];
  private readonly waiting = new Map<Job, NodeJS.Timeout>();
  private active = 0;
  private idle: (() => void)[] = [];
  private readonly transports = new Map<string, Transporter>();
  private closed = false;

  constructor(private readonly options: AlertDispatcherOptions) {}

  publish(account: ResolvedAccount, events: readonly AlertEvent[]): void {
    if (this.closed) return;
    const config = this.options.config();
    const to = account.record?.email;
    for (const event of events) {
      if (config.webhook) this.enqueue({ channel: 'webhook', event, attempt: 0 }, config.queueSize);
      if (config.email && to) this.enqueue({ channel: 'email', event, to, attempt: 0 }, config.queueSize);
    }
  }

  /** Deliveries queued, waiting for a retry, or in flight. */
  get pending(): number {
    return this.ready.length + this.waiting.size + this.active;
  }

  /** Resolves when nothing is pending, or after `timeoutMs`. */
  flush(timeoutMs: number): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Stops retries and closes SMTP connections; queued work is abandoned. */
  close(): void {
    this.closed = true;
    for (const timer of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    this.ready.length = 0;
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
    this.notifyIdle();
  }

  private enqueue(job: Job, limit: number): void {
    if (this.ready.length + this.waiting.size >= limit) {
      const oldest = this.ready.shift();
      if (oldest) this.report(oldest.channel, 'dropped', oldest.event, 'queue full');
      else {
        this.report(job.channel, 'dropped', job.event, 'queue full');
        return;
      }
    }
    this.ready.push(job);
    this.pump();
  }

  private pump(): void {
    const concurrency = this.options.concurrency ?? 4;
    while (!this.closed && this.active < concurrency && this.ready.length > 0) {
      const job = this.ready.shift()!;
      this.active += 1;
      void this.attempt(job).finally(() => {
        this.active -= 1;
        this.pump();
        this.notifyIdle();
      });
    }
  }

  private async attempt(job: Job): Promise<void> {
    const config = this.options.config();
    const maxAttempts = (job.channel === 'webhook' ? config.webhook?.maxAttempts : config.email?.maxAttempts) ?? 1;
    try {
      if (job.channel === 'webhook') await this.sendWebhook(job.event, config);
      else await this.sendEmail(job.event, job.to!, config);
      this.report(job.channel, 'sent', job.event);
    } catch (err) {
      job.attempt += 1;
      if (job.attempt >= maxAttempts || this.closed) {
        this.report(job.channel, 'failed', job.event, (err as Error).message);
        return;
      }
      const base = this.options.retryBaseMs ?? 1000;
      const delay = Math.min(60_000, base * 2 ** (job.attempt - 1)) * (0.5 + Math.random() / 2);
      this.report(job.channel, 'retried', job.event, (err as Error).message);
      const timer = setTimeout(() => {
        this.waiting.delete(job);
        this.ready.push(job);
        this.pump();
      }, delay);
      timer.unref();
      this.waiting.set(job, timer);
    }
  }

  private async sendWebhook(event: AlertEvent, config: AlertsConfig): Promise<void> {
    const hook = config.webhook;
    if (!hook) throw new Error('webhook no longer configured');
    const body = JSON.stringify(event);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'creditgate-webhook',
      'creditgate-event-id': event.id,
    };
    if (hook.secret !== undefined) {
      const secret = resolveSecret(hook.secret);
      if (secret === undefined) throw new Error(`webhook secret ${hook.secret} is not set`);
      headers[SIGNATURE_HEADER] = signPayload(secret, body, Math.floor(Date.now() / 1000));
    }
    const res = await fetch(hook.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(hook.timeoutMs) });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`webhook answered ${res.status}`);
  }

  private async sendEmail(event: AlertEvent, to: string, config: AlertsConfig): Promise<void> {
    const mail = config.email;
    if (!mail) throw new Error('e-mail no longer configured');
    let transport = this.transports.get(mail.smtp);
    if (!transport) {
      transport = nodemailer.createTransport(mail.smtp);
      this.transports.set(mail.smtp, transport);
    }
    const content = alertEmail(event, mail.subject);
    await transport.sendMail({ from: mail.from, to, subject: content.subject, text: content.text, html: content.html });
  }

  private report(channel: AlertChannel, result: DeliveryResult, event: AlertEvent, reason?: string): void {
    this.options.onResult?.(channel, result);
    const fields = { channel, result, eventId: event.id, type: event.type, creditType: event.creditType.id, ...(reason ? { reason } : {}) };
    if (result === 'sent') this.options.logger.debug(fields, 'alert delivered');
    else this.options.logger.warn(fields, 'alert delivery problem');
  }

  private notifyIdle(): void {
    if (this.pending > 0 && !this.closed) return;
    const waiters = this.idle;
    this.idle = [];
    for (const w of waiters) w();
  }
}
