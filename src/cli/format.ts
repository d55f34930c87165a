/**
 * @module cli/format
 * The CLI's human side: reading flag values people type (durations like `10m`, times like `+1h`
 * or ISO 8601, integers, comma lists) into checked values, and writing records back as short
 * text (tables, ages, task and dead-letter records). Parsers throw AgentComError
 * `invalid_payload` with the flag as `path`, so a bad flag exits 2 before anything is attempted.
 * Text here is for people and may change; scripts should use `--json`.
 */
import type { DlqRecord } from '../protocol/dlq.js';
import { parseDurationMs } from '../protocol/duration.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import type { HistoryEntry, TaskRecord } from '../protocol/task.js';

// --- Flag parsing ---

/** A usage error about one flag (exit 2). */
export function flagError(flag: string, message: string): AgentComError {
  return new AgentComError(ERROR_CODES.INVALID_PAYLOAD, message, { path: [flag] });
}

/** `--max-retries` from `maxRetries`, for messages that name the flag as typed. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * A duration such as `500ms`, `30s`, `10m`, `1h30m` or `2d` in ms (protocol/duration.ts). A unit
 * is required: a bare number is ambiguous (the shared `--timeout` takes ms, people mean seconds)
 * and is refused.
 */
export function parseDuration(text: string, key: string): number {
  const ms = parseDurationMs(text);
  if (ms === null)
    throw flagError(
      key,
      `${flagName(key)} must be a duration like 30s, 10m or 1h30m (units ms, s, m, h, d, w), got ${JSON.stringify(text)}`,
    );
  if (ms <= 0) throw flagError(key, `${flagName(key)} must be longer than 0, got ${JSON.stringify(text)}`);
  return ms;
}

/** A point in time: `+<duration>` from `now`, or an ISO 8601 date-time. Returns epoch ms. */
export function parseTime(text: string, key: string, now = Date.now()): number {
  const s = text.trim();
  if (s.startsWith('+')) return now + parseDuration(s.slice(1), key);
  // Date.parse accepts odd things ("1", "March"); insist on a date that starts like ISO 8601.
  const at = /^\d{4}-\d{2}-\d{2}/.test(s) ? Date.parse(s) : Number.NaN;
  if (Number.isNaN(at))
    throw flagError(
      key,
      `${flagName(key)} must be an ISO 8601 time (2030-01-31T12:00:00Z) or +duration (+10m), got ${JSON.stringify(text)}`,
    );
  return at;
}

/** An integer within bounds. */
export function parseIntFlag(text: string, key: string, bounds: { min: number; max: number }): number {
  const n = /^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < bounds.min || n > bounds.max)
    throw flagError(
      key,
      `${flagName(key)} must be an integer from ${bounds.min} to ${bounds.max}, got ${JSON.stringify(text)}`,
    );
  return n;
}

/** `a,b, c` -> `['a','b','c']` (empty items dropped). */
export function parseList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A JSON object (for `--metadata`). */
export function parseJsonObject(text: string, key: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw flagError(key, `${flagName(key)} is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw flagError(key, `${flagName(key)} must be a JSON object, e.g. '{"ticket":"ABC-1"}'`);
  return value as Record<string, unknown>;
}

// --- Durations and times ---

/** Compact duration for people: `850ms`, `3.2s`, `5m12s`, `2h05m`, `3d4h`. */
export function formatDuration(ms: number): string {
  const v = Math.max(0, Math.round(ms));
  if (v < 1_000) return `${v}ms`;
  if (v < 60_000) return `${(v / 1_000).toFixed(v < 10_000 ? 1 : 0)}s`;
  if (v < 3_600_000)
    return `${Math.floor(v / 60_000)}m${String(Math.floor((v % 60_000) / 1_000)).padStart(2, '0')}s`;
  if (v < 86_400_000)
    return `${Math.floor(v / 3_600_000)}h${String(Math.floor((v % 3_600_000) / 60_000)).padStart(2, '0')}m`;
  return `${Math.floor(v / 86_400_000)}d${Math.floor((v % 86_400_000) / 3_600_000)}h`;
}

/** How long ago, one unit: `12s`, `5m`, `2h`, `3d`. */
export function formatAge(since: number, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - since) / 1_000));
  if (s < 60) return `${s}s`;
  if (s < 3_600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** An instant as ISO 8601 (UTC), the form people paste back into `--complete-by`. */
export function formatTime(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

/** Time of day with ms (UTC), for transition lines where the date is noise. */
export function formatClock(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(11, 23);
}

// --- Tables ---

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** At most `max` characters, with an ellipsis when cut. */
export function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** Compact JSON of an unknown value (results, metadata), cut at `max` characters. */
export function compactJson(value: unknown, max = 200): string {
  return truncate(JSON.stringify(value) ?? 'null', max);
}

// --- Tasks ---

export function taskRows(tasks: TaskRecord[], now = Date.now()): string[] {
  return table(
    ['ID', 'STATUS', 'PRIORITY', 'QUEUE', 'ASSIGNEE', 'AGE', 'TITLE'],
    tasks.map((t) => [
      t.id,
      t.status,
      t.priority,
      t.queue,
      t.assignee ?? '-',
      formatAge(t.createdAt, now),
      truncate(t.title, 60),
    ]),
  );
}

/** One transition of a task's history: `12:00:01.123  queued -> assigned  gen 1  by hub  (reason)`. */
export function historyLine(h: HistoryEntry): string {
  const move = h.from ? `${h.from} -> ${h.to}` : `submitted (${h.to})`;
  const why = h.reason ? `  (${truncate(h.reason, 120)})` : '';
  return `${formatClock(h.at)}  ${move}  gen ${h.generation}  by ${h.by}${why}`;
}

export function progressText(t: TaskRecord): string {
  if (!t.progress) return '';
  const pct = t.progress.pct === undefined ? '' : `${Math.round(t.progress.pct)}%`;
  return [pct, t.progress.message ?? ''].filter(Boolean).join(' ');
}

/** How a finished task ended, in one line. */
export function outcomeLine(t: TaskRecord): string {
  const took = t.completedAt === null ? '' : ` after ${formatDuration(t.completedAt - t.createdAt)}`;
  switch (t.status) {
    case 'done':
      return `done${took}${t.assignee ? ` by ${t.assignee}` : ''}; result ${compactJson(t.result)}`;
    case 'failed':
    case 'dead':
      return `${t.status}${took}: ${t.error ? `${t.error.code}: ${truncate(t.error.message, 300)}` : 'no error recorded'}`;
    case 'cancelled': {
      const reason = [...t.history].reverse().find((h) => h.to === 'cancelled')?.reason;
      return `cancelled${took}${reason ? `: ${reason}` : ''}`;
    }
    default:
      return `${t.status}`;
  }
}

/** A task record for people: fields that are set, then the history (oldest first). */
export function describeTask(t: TaskRecord, now = Date.now()): string[] {
  const rows: [string, string][] = [
    ['id', t.id],
    ['title', t.title],
    ['status', t.status],
    ['priority', t.priority],
    ['queue', t.queue],
    ['assignee', t.assignee ?? '-'],
    ['generation', String(t.generation)],
    ['retries', `${t.retryCount} of ${t.maxRetries}`],
    ['created', `${formatTime(t.createdAt)} (${formatAge(t.createdAt, now)} ago)`],
  ];
  if (t.capabilities.length) rows.push(['capabilities', t.capabilities.join(', ')]);
  if (t.notBefore !== undefined) rows.push(['not before', formatTime(t.notBefore)]);
  if (t.completeBy !== undefined) rows.push(['complete by', formatTime(t.completeBy)]);
  if (t.assignedAt !== null) rows.push(['assigned', formatTime(t.assignedAt)]);
  if (t.acceptedAt !== null) rows.push(['accepted', formatTime(t.acceptedAt)]);
  if (t.completedAt !== null) rows.push(['finished', formatTime(t.completedAt)]);
  if (t.progress) rows.push(['progress', progressText(t)]);
  if (t.tokensUsed) rows.push(['tokens', String(t.tokensUsed)]);
  if (t.idempotencyKey) rows.push(['idempotency key', t.idempotencyKey]);
  if (t.submittedBy) rows.push(['submitted by', t.submittedBy]);
  if (t.metadata) rows.push(['metadata', compactJson(t.metadata, 500)]);
  if (t.flaggedAgents.length) rows.push(['flagged agents', t.flaggedAgents.join(', ')]);
  if (t.error) rows.push(['error', `${t.error.code}: ${truncate(t.error.message, 500)}`]);
  if (t.result !== null && t.result !== undefined) rows.push(['result', compactJson(t.result, 500)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  if (t.description) lines.push('', 'description:', ...t.description.split('\n').map((l) => `  ${l}`));
  lines.push('', 'history:', ...t.history.map((h) => `  ${historyLine(h)}`));
  return lines;
}

// --- Dead letters ---

export function dlqRows(items: DlqRecord[], now = Date.now()): string[] {
  return table(
    ['SEQ', 'AGE', 'STREAM', 'SUBJECT', 'DELIVERIES', 'REASON'],
    items.map((d) => [
      String(d.seq),
      formatAge(Date.parse(d.dead_lettered_at), now),
      d.stream,
      d.subject,
      String(d.deliveries),
      truncate(`${d.reason.code}: ${d.reason.message}`, 80),
    ]),
  );
}

/** Tasks out of retries (status `dead`), beside the dead letters: one place to find what failed for good. */
export function deadTaskRows(tasks: TaskRecord[], now = Date.now()): string[] {
  return table(
    ['TASK', 'AGE', 'RETRIES', 'LAST ASSIGNEE', 'ERROR', 'TITLE'],
    tasks.map((t) => [
      t.id,
      formatAge(t.completedAt ?? t.createdAt, now),
      String(t.retryCount),
      t.assignee ?? '-',
      truncate(t.error ? `${t.error.code}: ${t.error.message}` : '-', 60),
      truncate(t.title, 40),
    ]),
  );
}

/** A dead letter for people, payload last (pretty-printed when it is JSON). */
export function describeDeadLetter(d: DlqRecord): string[] {
  const rows: [string, string][] = [
    ['seq', String(d.seq)],
    ['dead-lettered', d.dead_lettered_at],
    ['reason', `${d.reason.code}: ${d.reason.message}`],
    ['stream', `${d.stream} (seq ${d.stream_seq})`],
    ['consumer', d.consumer],
    ['subject', d.subject],
    ['deliveries', String(d.deliveries)],
    ['msg id', d.msg_id ?? '-'],
    ['correlation id', d.correlation_id ?? '-'],
    ['size', `${d.size} bytes`],
  ];
  if (d.reason.path?.length) rows.push(['path', d.reason.path.join('.')]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  const headers = Object.entries(d.headers);
  if (headers.length) {
    lines.push('', 'headers:');
    for (const [k, vs] of headers) for (const v of vs) lines.push(`  ${k}: ${v}`);
  }
  lines.push('', d.payload_encoding === 'base64' ? 'payload (base64):' : 'payload:');
  lines.push(...prettyPayload(d).map((l) => `  ${l}`));
  return lines;
}

function prettyPayload(d: DlqRecord): string[] {
  if (d.payload_encoding === 'base64') return [d.payload];
  try {
    return JSON.stringify(JSON.parse(d.payload), null, 2).split('\n');
  } catch {
    return d.payload.split('\n');
  }
}
