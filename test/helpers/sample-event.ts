// An alert event as the store and receivers see it, for tests that need one.

import type { AlertEvent } from '../../src/store/credit-store.js';

export function sampleEvent(id: string, over: Partial<AlertEvent> = {}): AlertEvent {
  return {
    id,
    type: 'threshold_reached',
    account: 'acme',
    creditType: { id: 'ai_tasks', name: 'AI Task Credits' },
    used: 80,
    allowance: 100,
    threshold: 0.8,
    resetsAt: '2026-12-01T00:00:00.000Z',
    topUp: null,
    createdAt: '2026-11-25T00:00:00.000Z',
    ...over,
  };
}
