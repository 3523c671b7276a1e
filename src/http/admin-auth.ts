// Bearer-token check for the admin API, compared in constant time.

import { ConstantTimeSecret } from './constant-time-secret.js';

export class AdminToken {
  private readonly secret: ConstantTimeSecret;

  /** An unset or empty token disables the admin API (403), never opens it. */
  constructor(token: string | undefined) {
    this.secret = new ConstantTimeSecret(token);
  }

  get enabled(): boolean {
    return this.secret.isSet;
  }

  matches(authorization: string | undefined): boolean {
    const m = authorization === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    return this.secret.matches(m ? m[1] : undefined);
  }
}
