// Which strings may name an account: 1–128 characters of visible ASCII.
// Anything wider (whitespace, control bytes, non-ASCII) is refused rather than
// normalised, because two spellings of one id would split its counters.

const ACCOUNT_ID = /^[\x21-\x7e]{1,128}$/;

export const ACCOUNT_ID_RULE = '1–128 visible ASCII characters (! to ~)';

export function isValidAccountId(id: string): boolean {
  return ACCOUNT_ID.test(id);
}
