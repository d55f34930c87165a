/**
 * @module agent/sidecar/mail
 * The sidecar's messaging relay (`messages` in sidecar.json; docs/protocol.md §13), so that an
 * agent that never touches NATS (an LLM session) can read and answer its mail through files.
 *
 * Incoming: the agent's mailbox is read with the SDK (`messages.onMessage`, agent/messages.ts:
 * from the acknowledged cursor, each message once and in seq order per run). Each message is
 * written atomically to `<dir>/<seq, 12 digits>.json` (msg.message) and acked only once it is on
 * disk, so a crash at any point loses nothing: what was not acked is read again and written
 * again. A message whose file is there already, or was moved to `read/` by the agent, is not
 * written again, so the agent sees each message once as long as it moves what it has read to
 * `read/` (a file it deletes may come back after a sidecar crash). A direct message wakes the
 * agent when `wakeOnDirect` is set (wakers.ts).
 *
 * Outgoing: a file `outbox/<name>.json` (written atomically by the agent: a send request without
 * `v`, `as` and `sender`) is sent as the agent; what was stored is written to
 * `outbox/sent/<name>.json` and the outbox file removed. Its `clientId` is derived from its name
 * and content, so a file sent again after a crash (within the hub's 2-minute dedupe window) is not
 * stored twice. One the hub refuses (unknown agent or channel, not a member, too large, invalid) is
 * moved to `outbox/rejected/` with the reason; one that fails for a transient reason stays and is
 * tried again at the next scan.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AgentComError } from '../../protocol/errors.js';
import { type Message, MsgSendRequestSchema } from '../../protocol/message.js';
import { writeFileAtomic } from '../../runtime/atomic-file.js';
import type { AgentClient } from '../client.js';
import { isTransientError, type MessageSubscription } from '../messages.js';
import type { ResolvedSidecarConfig } from '../sidecar-config.js';
import { type DirWatch, watchDir } from './dir-watch.js';
import { MAX_RESULT_FILE_BYTES, type MessagePaths, messagePaths, parseOutboxFileName } from './files.js';
import type { Wakers } from './wakers.js';

/** An outbox file: a send request as the agent (the sidecar adds `v` and the `clientId`). */
export const OutboxFileSchema = MsgSendRequestSchema.omit({ v: true, as: true, sender: true, clientId: true })
  .extend({ v: z.literal(1).optional() })
  .describe(
    'A message for the sidecar to send: exactly one of `to`, `channel`, `broadcast`, or only `replyTo`.',
  );

/** A file younger than this that is not JSON may still be being written: look again later. */
const SETTLE_MS = 2_000;
/** After the incoming relay failed (a disk error), start it again after this long. */
const RESTART_MS = 2_000;

export class MailRelay {
  readonly paths: MessagePaths;
  private sub: MessageSubscription | undefined;
  private outbox: DirWatch | undefined;
  private restart: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Outbox files one at a time, in the order found. */
  private chain: Promise<unknown> = Promise.resolve();
  private readonly inFlight = new Set<string>();
  private readonly log: Logger;

  constructor(
    private readonly config: ResolvedSidecarConfig & {
      messages: NonNullable<ResolvedSidecarConfig['messages']>;
    },
    private readonly client: AgentClient,
    private readonly wakers: Wakers,
    log: Logger,
    private readonly pollMs = 1_000,
  ) {
    this.paths = messagePaths(config.messages.dir);
    this.log = log.child({ phase: 'messages' });
  }

  /** Creates the directories (mode 0700). */
  static async prepare(dir: string): Promise<void> {
    const p = messagePaths(dir);
    for (const d of [p.dir, p.readDir, p.outboxDir, p.sentDir, p.rejectedDir])
      await mkdir(d, { recursive: true, mode: 0o700 });
  }

  start(): void {
    this.follow();
    this.outbox = watchDir(this.paths.outboxDir, (name) => this.onOutboxName(name), this.pollMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restart);
    this.outbox?.close();
    await this.sub?.stop();
    await this.chain.catch(() => {});
  }

  // --- incoming ---

  private follow(): void {
    if (this.stopped) return;
    const sub = this.client.messages.onMessage((m) => this.deliver(m));
    this.sub = sub;
    sub.done.then(
      () => undefined,
      (err) => {
        if (this.stopped) return;
        this.log.error({ err }, 'message relay stopped; starting it again');
        this.restart = setTimeout(() => this.follow(), RESTART_MS);
        this.restart.unref();
      },
    );
  }

  /** On disk before the SDK acks it (onMessage acks once this resolves). */
  private async deliver(m: Message): Promise<void> {
    const file = this.paths.messageFile(m.seq);
    if (!existsSync(file) && !existsSync(this.paths.readFile(m.seq)))
      await writeFileAtomic(file, `${JSON.stringify(m, null, 2)}\n`);
    this.log.info({ seq: m.seq, kind: m.kind, from: m.from, channel: m.channel, file }, 'message written');
    if (m.kind === 'direct' && this.config.messages.wakeOnDirect)
      void this.wakers.wakeForMail(file, this.paths.dir);
  }

  // --- outgoing ---

  private onOutboxName(name: string): void {
    if (parseOutboxFileName(name) === null || this.inFlight.has(name) || this.stopped) return;
    this.inFlight.add(name);
    const run = this.chain.then(() => this.sendFile(name));
    this.chain = run
      .catch((err) =>
        // Not sent (NATS down, the hub busy): the file stays, and the next scan tries again.
        this.log.warn({ file: name, err }, 'outbox file not sent yet'),
      )
      .finally(() => this.inFlight.delete(name));
  }

  private async sendFile(name: string): Promise<void> {
    const path = join(this.paths.outboxDir, name);
    let text: string;
    let mtime: number;
    let ino: number;
    try {
      const s = await stat(path);
      if (!s.isFile()) return;
      if (s.size > MAX_RESULT_FILE_BYTES)
        return this.reject(name, `too large: ${s.size} bytes (max ${MAX_RESULT_FILE_BYTES})`);
      mtime = s.mtimeMs;
      ino = s.ino;
      text = await readFile(path, 'utf8');
    } catch {
      return; // gone (sent already, or the agent took it back)
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      if (Date.now() - mtime < SETTLE_MS) return;
      return this.reject(name, `not JSON: ${(err as Error).message}`);
    }
    const parsed = OutboxFileSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.reject(name, `invalid: ${issue?.message} at ${issue?.path.join('.') || '(root)'}`);
    }
    const { v: _v, ...req } = parsed.data;
    // The same file (a retry after a crash between the send and the move to sent/) is the same
    // message; a new file of the same name and text (written again: a new inode and time) is a new one.
    const clientId = `ob-${createHash('sha256')
      .update(`${name}\0${ino}\0${mtime}\0`)
      .update(text)
      .digest('hex')
      .slice(0, 48)}`;
    let sent: { message: Message; duplicate: boolean };
    try {
      sent = await this.client.messages.sendRequest({ ...req, clientId });
    } catch (err) {
      if (!isTransientError(err) && err instanceof AgentComError)
        return this.reject(name, `${err.code}: ${err.message}`);
      throw err;
    }
    await writeFileAtomic(join(this.paths.sentDir, name), `${JSON.stringify(sent.message, null, 2)}\n`);
    await rm(path, { force: true });
    this.log.info(
      { file: name, seq: sent.message.seq, kind: sent.message.kind, duplicate: sent.duplicate },
      'outbox message sent',
    );
  }

  private async reject(name: string, reason: string): Promise<void> {
    const to = join(this.paths.rejectedDir, `${name}.${Date.now()}`);
    try {
      // The reason first: whoever sees the moved file can read why.
      await writeFileAtomic(`${to}.reason.txt`, `${reason}\n`);
      await rename(join(this.paths.outboxDir, name), to).catch(async (err) => {
        await rm(`${to}.reason.txt`, { force: true });
        throw err;
      });
    } catch (err) {
      this.log.error({ file: name, err }, 'could not move a rejected outbox file');
      return;
    }
    this.log.warn({ file: name, moved_to: to, reason }, 'outbox file not sent');
  }
}
