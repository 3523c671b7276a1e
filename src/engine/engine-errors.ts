// Bad input to the engine's admin operations: the admin API answers 400 with
// the message. (Store failures are StoreError, in the store's own module.)

export class TopUpError extends Error {
  readonly code = 'invalid_topup';
}

export class AccountInputError extends Error {
  readonly code = 'invalid_account';
}
