/**
 * @module result
 * The one result shape of the runtime: expected outcomes (OTP's `{ok, X}` / `{error, R}`) are
 * returned as values, never thrown. Every error is an object discriminated by `kind`.
 */

export type Ok<T> = { readonly ok: true; readonly value: T };
export type Err<E> = { readonly ok: false; readonly error: E };
export type Result<T, E> = Ok<T> | Err<E>;

export const ok = <T>(value: T): Ok<T> => ({ ok: true, value });
export const err = <const E>(error: E): Err<E> => ({ ok: false, error });
