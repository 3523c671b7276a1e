// x-request-id: kept when a trusted hop sent a sane one, created otherwise, so
// one id follows a request through logs, upstream and response.

import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const SANE_ID = /^[\x21-\x7e]{1,200}$/;

export function requestIdOf(headers: IncomingHttpHeaders): string {
  const given = headers['x-request-id'];
  return typeof given === 'string' && SANE_ID.test(given) ? given : randomUUID();
}
