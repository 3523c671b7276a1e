// Which upstream outcomes give a charge back: pure rules, every branch.

import { describe, expect, it } from 'vitest';
import { refundReason, releaseConfirmed } from '../../src/domain/refund-policy.js';

const DEFAULT = ['5xx', 'connection_error', 'timeout'] as const;

describe('refundReason', () => {
  it('refunds upstream failures listed in refundOn', () => {
    expect(refundReason({ status: 503 }, DEFAULT)).toBe('upstream_error');
    expect(refundReason({ error: 'connection_error' }, DEFAULT)).toBe('upstream_error');
    expect(refundReason({ error: 'timeout' }, DEFAULT)).toBe('upstream_error');
    expect(refundReason({ status: 404 }, DEFAULT)).toBeNull();
    expect(refundReason({ status: 404 }, ['4xx'])).toBe('upstream_error');
    expect(refundReason({ status: 502 }, [503])).toBeNull();
  });

  it('a client hang-up after forwarding is charged unless refundOn lists client_abort', () => {
    expect(refundReason({ error: 'client_abort' }, DEFAULT)).toBeNull();
    expect(refundReason({ error: 'client_abort' }, [...DEFAULT, 'client_abort'])).toBe('client_abort');
  });

  it('a request never forwarded is never owed, whatever refundOn says', () => {
    expect(refundReason({ error: 'not_forwarded' }, [])).toBe('not_delivered');
  });

  it('answers outside chargeWhen are not delivered', () => {
    expect(refundReason({ status: 404 }, DEFAULT, { status: [200] })).toBe('not_delivered');
    expect(refundReason({ status: 200 }, DEFAULT, { status: [200] })).toBeNull();
  });

  it('a release is confirmed by a 2xx, or by releaseWhen statuses only', () => {
    expect(releaseConfirmed({ status: 200 })).toBe(true);
    expect(releaseConfirmed({ status: 204 })).toBe(true);
    expect(releaseConfirmed({ status: 404 })).toBe(false);
    expect(releaseConfirmed({ status: 500 })).toBe(false);
    expect(releaseConfirmed({ error: 'timeout' })).toBe(false);
    expect(releaseConfirmed({ error: 'client_abort' })).toBe(false);
    expect(releaseConfirmed({ status: 200 }, { status: [204] })).toBe(false);
    expect(releaseConfirmed({ status: 204 }, { status: [204] })).toBe(true);
  });
});
