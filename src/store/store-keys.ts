// Key layout shared by every store. All keys of one account carry the
// account in one hash tag ({…}) so a multi-key Lua script runs on one Redis
// Cluster slot.
//
//   <prefix>:{<account>}:acct                  account record (JSON)
//   <prefix>:{<account>}:u:<type>:<cycleStart>  used credits in one cycle
//
// Account ids may contain any visible ASCII, including { } : and %, so they are
// escaped: otherwise "a}" would end the hash tag early, and "a:u:x" could
// collide with another account's counter.

export function escapeAccount(account: string): string {
  return account.replace(/[%{}:]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export class StoreKeys {
  constructor(readonly prefix: string = 'cg') {}

  accountTag(account: string): string {
    return `${this.prefix}:{${escapeAccount(account)}}`;
  }

  account(account: string): string {
    return `${this.accountTag(account)}:acct`;
  }

  usage(account: string, creditType: string, cycleStart: number): string {
    return `${this.accountTag(account)}:u:${creditType}:${Math.floor(cycleStart / 1000)}`;
  }
}
