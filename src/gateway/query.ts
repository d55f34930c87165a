/**
 * @module gateway/query
 * Query-string fields as zod schemas: a query value arrives as a string (or several, for a
 * repeated key), so numbers, booleans and lists are parsed here, at the boundary, with the same
 * structured errors as a body.
 */
import { z } from 'zod';

/** An integer from a query string. */
export const qInt = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** `true`/`false` (also `1`/`0`) from a query string. */
export const qBool = z
  .enum(['true', 'false', '1', '0'])
  .transform((s) => s === 'true' || s === '1')
  .describe('true or false');

/** A list: `?status=a,b` or `?status=a&status=b`. */
export function qList<T extends z.ZodType>(item: T) {
  return z.preprocess(
    (v) => (Array.isArray(v) ? v.flatMap((s) => String(s).split(',')) : String(v).split(',')),
    z.array(item).min(1).max(20),
  );
}
