/**
 * @module duration
 * Durations in human units (`500ms`, `30s`, `10m`, `1h30m`, `2d`, `1w`): the one parser the CLI
 * flags and the `delay` of a task submission share. A unit is required (a bare `30` is refused: ms
 * or s?), parts are summed, and the result is whole ms. Pure.
 */
import { z } from 'zod';

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** One or more `<number><unit>` parts, nothing else. */
export const DURATION_PATTERN = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;

/** The duration in ms, or null when `text` is not one (empty, no unit, unknown unit, junk). */
export function parseDurationMs(text: string): number | null {
  const s = text.trim();
  if (!DURATION_PATTERN.test(s)) return null;
  let ms = 0;
  for (const p of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) ms += Number(p[1]) * UNIT_MS[p[2]!]!;
  return Math.round(ms);
}

/**
 * A duration field: whole ms, or a duration string (`4h`, `1h30m`), between `minMs` and `maxMs`.
 * Read it with {@link durationFieldMs}.
 */
export function durationField(minMs: number, maxMs: number) {
  const range = `between ${describeMs(minMs)} and ${describeMs(maxMs)}`;
  return z.union([
    z.int().min(minMs).max(maxMs),
    z
      .string()
      .max(32)
      .regex(DURATION_PATTERN, 'must be a duration such as 30s, 10m, 4h or 1h30m (units ms, s, m, h, d, w)')
      .refine((s) => {
        const ms = parseDurationMs(s) ?? Number.NaN;
        return ms >= minMs && ms <= maxMs;
      }, `must be ${range}`),
  ]);
}

/** The ms of a value a {@link durationField} has accepted. */
export function durationFieldMs(value: number | string): number {
  return typeof value === 'number' ? value : (parseDurationMs(value) ?? 0);
}

function describeMs(ms: number): string {
  for (const [unit, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const)
    if (ms >= n && ms % n === 0) return `${ms / n}${unit}`;
  return `${ms}ms`;
}
