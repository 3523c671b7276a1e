// Tests read JSON bodies and assert on their fields; `any` here keeps those
// assertions readable. Test-only: src/ never sees this declaration.
export {};
declare global {
  interface Response {
    json(): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  }
}
