/**
 * @module gateway/tokens
 * Bearer tokens (protocol/token.ts): created, listed and revoked in the `<p>_tokens` bucket, and
 * verified by the gateway from a copy it keeps current by watching the bucket, so a revocation on
 * any gateway or from the CLI is refused everywhere within the watch's delivery (milliseconds).
 * A token id the copy does not know yet (created a moment ago) is looked up once in the bucket.
 * Secrets are compared by hash in constant time and never logged or stored.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Bus } from '../bus/connection.js';
import { type KvWatch, openKv, type TypedKv } from '../bus/kv.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import type { RateLimit } from '../protocol/limits.js';
import { parseToken, type TokenRecord, TokenRecordSchema, type TokenRole } from '../protocol/token.js';
import { exponentialDelay } from '../runtime/backoff.js';

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

function newTokenId(): string {
  const bytes = randomBytes(12);
  let id = '';
  for (const b of bytes) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return id;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export function openTokensKv(bus: Bus): Promise<TypedKv<TokenRecord>> {
  return openKv(bus, bus.names.buckets.tokens, TokenRecordSchema);
}

export interface NewToken {
  name: string;
  role: TokenRole;
  agentId?: string;
  rate?: RateLimit;
  /** Lifetime in ms; absent: no expiry. */
  ttlMs?: number;
}

/** Creates a token: the secret string (shown once) and the record stored. */
export async function createToken(
  kv: TypedKv<TokenRecord>,
  t: NewToken,
  now = Date.now(),
): Promise<{ token: string; record: TokenRecord }> {
  const secret = randomBytes(32).toString('base64url');
  const record = TokenRecordSchema.parse({
    v: 1,
    id: newTokenId(),
    name: t.name,
    role: t.role,
    ...(t.agentId !== undefined ? { agentId: t.agentId } : {}),
    hash: sha256(secret),
    ...(t.rate ? { rate: t.rate } : {}),
    createdAt: now,
    expiresAt: t.ttlMs !== undefined ? now + t.ttlMs : null,
  });
  const r = await kv.create(record.id, record);
  if (!r.ok) throw new Error('token id collision; try again');
  return { token: `agc_${record.id}_${secret}`, record };
}

/** Every stored token, oldest first. */
export async function listTokens(kv: TypedKv<TokenRecord>): Promise<TokenRecord[]> {
  const all = [...(await kv.entries()).values()].map((e) => e.value);
  return all.sort((a, b) => a.createdAt - b.createdAt);
}

/** Revokes a token by id; false when there was none. */
export async function revokeToken(kv: TypedKv<TokenRecord>, id: string): Promise<boolean> {
  if (!(await kv.get(id))) return false;
  await kv.delete(id);
  return true;
}

export type VerifyResult =
  | { ok: true; token: TokenRecord }
  | { ok: false; reason: 'malformed' | 'unknown' | 'expired' };

/**
 * The gateway's view of the bucket, kept current by a watch. If the watch ends (the server went
 * away), it is opened again with backoff and the bucket read afresh; meanwhile every token is
 * looked up in the bucket, so a revocation is never missed.
 */
export class TokenVerifier {
  /** id -> record, or null for a deleted one (so a late initial value cannot revive it). */
  private readonly byId = new Map<string, { record: TokenRecord | null; revision: number }>();
  private watch: KvWatch<TokenRecord> | undefined;
  private following = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  private constructor(
    private readonly kv: TypedKv<TokenRecord>,
    private readonly log: Bus['log'],
    /** Told the id of a token deleted (revoked), so what it holds open can be ended. */
    private readonly onRevoke: (id: string) => void,
  ) {}

  static async open(bus: Bus, onRevoke: (id: string) => void = () => {}): Promise<TokenVerifier> {
    const v = new TokenVerifier(await openTokensKv(bus), bus.log, onRevoke);
    await v.follow();
    return v;
  }

  /** Watch first, then read: a token written in between is in one of the two. */
  private async follow(attempt = 0): Promise<void> {
    try {
      const watch = await this.kv.watch({ updatesOnly: true });
      this.watch = watch;
      const all = await this.kv.entries();
      for (const [id, cur] of this.byId)
        if (cur.record && !all.has(id)) this.apply(id, null, Number.MAX_SAFE_INTEGER);
      for (const [id, e] of all) this.apply(id, e.value, e.revision);
      this.following = true;
      void (async () => {
        for await (const c of watch) this.apply(c.key, c.operation === 'put' ? c.value : null, c.revision);
      })()
        .catch((err) => this.log.warn({ err, actor: 'gateway' }, 'token watch failed'))
        .finally(() => this.rewatch(0));
    } catch (err) {
      this.log.warn(
        { err, actor: 'gateway', attempt },
        'token watch could not start; looking tokens up meanwhile',
      );
      this.rewatch(attempt + 1);
    }
  }

  private rewatch(attempt: number): void {
    this.following = false;
    if (this.stopped) return;
    this.retry = setTimeout(
      () => void this.follow(attempt),
      exponentialDelay(attempt, { min: 500, max: 10_000 }),
    );
  }

  private apply(id: string, record: TokenRecord | null, revision: number): void {
    const cur = this.byId.get(id);
    if (cur && cur.revision >= revision) return;
    this.byId.set(id, { record, revision });
    if (record === null && cur?.record) this.onRevoke(id);
  }

  /**
   * Checks a presented token string. `beforeLookup` runs before a token this copy does not know
   * is looked up in the bucket (a round trip to NATS): it may throw to refuse (a rate limit).
   */
  async verify(
    presented: string,
    now = Date.now(),
    beforeLookup: () => void = () => {},
  ): Promise<VerifyResult> {
    const parts = parseToken(presented);
    if (!parts) return { ok: false, reason: 'malformed' };
    let entry = this.following ? this.byId.get(parts.id) : undefined;
    if (!entry) {
      beforeLookup();
      const got = await this.kv.get(parts.id).catch((err) => {
        throw new AgentComError(ERROR_CODES.UNAVAILABLE, 'tokens cannot be checked now (NATS)', {
          cause: err,
        });
      });
      if (got) this.apply(parts.id, got.value, got.revision);
      entry = got ? this.byId.get(parts.id) : undefined;
    }
    const record = entry?.record;
    if (!record) return { ok: false, reason: 'unknown' };
    const a = Buffer.from(sha256(parts.secret), 'hex');
    const b = Buffer.from(record.hash, 'hex');
    if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, reason: 'unknown' };
    if (record.expiresAt !== null && record.expiresAt <= now) return { ok: false, reason: 'expired' };
    return { ok: true, token: record };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.watch?.stop();
  }
}
