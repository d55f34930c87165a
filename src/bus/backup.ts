/**
 * @module backup
 * Backup and restore of a deployment's JetStream state: every stream of one prefix (submissions,
 * inboxes, reports, dead letters, advisories) and every KV bucket (tasks, agents with their FSM
 * snapshots, leases), to a directory of plain files and back.
 *
 * Layout of a backup directory (written as `<dir>.partial`, renamed when complete, so a directory
 * without that suffix is always whole):
 *   manifest.json              { v: 1, prefix, createdAt, streams: [{ name, messages, firstSeq, lastSeq }] }
 *   <stream>.config.json       the stream's configuration
 *   <stream>.jsonl             one stored message per line: { seq, subject, time, headers, data (base64) }
 *
 * Guarantees and limits. Each stream is read message by message (the stream-get API, which works on
 * work-queue streams too, where no second consumer may be attached), so a backup taken while hubs
 * run is consistent per message, not across streams: take it with the hubs stopped for an exact
 * copy, or live for a recent one (what changed during it is replayed or deduplicated on restore,
 * because every consumer of AgentCom is idempotent). Consumers are not saved: the hub provisions
 * its durables at start and an agent's inbox durable at its hello, and a restored work-queue stream
 * is delivered to them from its first message. Restore recreates missing streams from their saved
 * configuration and republishes every message to its original subject with its headers (KV
 * entries get new revisions; `Nats-Expected-*` headers are dropped); it refuses a stream that
 * already holds messages unless `force` is set.
 */

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { StreamConfig } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { z } from 'zod';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import type { Bus } from './connection.js';

export const BackupManifestSchema = z
  .object({
    v: z.literal(1),
    prefix: z.string(),
    createdAt: z.int().nonnegative(),
    streams: z.array(
      z.object({
        name: z.string(),
        messages: z.int().nonnegative(),
        firstSeq: z.int().nonnegative(),
        lastSeq: z.int().nonnegative(),
      }),
    ),
  })
  .describe('manifest.json of a backup directory.');
export type BackupManifest = z.infer<typeof BackupManifestSchema>;

const BackupMessageSchema = z.object({
  seq: z.int().positive(),
  subject: z.string().min(1),
  time: z.string(),
  headers: z.array(z.tuple([z.string(), z.string()])),
  data: z.string(),
});

/** The streams of a deployment: its own (`<P>_*`) and its KV buckets (`KV_<p>_*`). */
export async function deploymentStreams(bus: Bus): Promise<string[]> {
  const own = `${bus.names.prefix.toUpperCase()}_`;
  const kv = `KV_${bus.names.prefix}_`;
  const out: string[] = [];
  for await (const name of bus.jsm.streams.names())
    if (name.startsWith(own) || name.startsWith(kv)) out.push(name);
  return out.sort();
}

/** Reads every message of the deployment's streams into `dir`; resolves with the manifest. */
export async function createBackup(
  bus: Bus,
  dir: string,
  opts: { concurrency?: number } = {},
): Promise<BackupManifest> {
  const partial = `${dir}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true, mode: 0o700 });
  const manifest: BackupManifest = { v: 1, prefix: bus.names.prefix, createdAt: Date.now(), streams: [] };
  for (const name of await deploymentStreams(bus)) {
    const info = await bus.jsm.streams.info(name);
    await writeFile(join(partial, `${name}.config.json`), `${JSON.stringify(info.config, null, 2)}\n`);
    const out = createWriteStream(join(partial, `${name}.jsonl`));
    let messages = 0;
    const { first_seq: first, last_seq: last } = info.state;
    const concurrency = opts.concurrency ?? 64;
    for (let from = first; info.state.messages > 0 && from <= last; from += concurrency) {
      const seqs = Array.from({ length: Math.min(concurrency, last - from + 1) }, (_, i) => from + i);
      const got = await Promise.all(
        seqs.map((seq) => bus.jsm.streams.getMessage(name, { seq }).catch(() => null)),
      );
      for (const m of got) {
        if (!m) continue; // deleted (acked on a work queue, purged, expired)
        const hs: [string, string][] = [];
        if (m.header) for (const [k, vs] of m.header) for (const v of vs) hs.push([k, v]);
        const line = {
          seq: m.seq,
          subject: m.subject,
          time: m.time.toISOString(),
          headers: hs,
          data: Buffer.from(m.data).toString('base64'),
        };
        if (!out.write(`${JSON.stringify(line)}\n`))
          await new Promise<void>((r) => out.once('drain', () => r()));
        messages++;
      }
    }
    await new Promise<void>((resolve, reject) =>
      out.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
    manifest.streams.push({ name, messages, firstSeq: first, lastSeq: last });
  }
  await writeFile(join(partial, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(partial, dir);
  return manifest;
}

export interface RestoreResult {
  streams: { name: string; created: boolean; messages: number }[];
}

/** Headers that would make the server refuse or reinterpret a republished message. */
const DROPPED_HEADERS = /^Nats-Expected-/i;

/** Writes a backup back. @throws AgentComError `conflict` for a non-empty stream without `force`. */
export async function restoreBackup(
  bus: Bus,
  dir: string,
  opts: { force?: boolean } = {},
): Promise<RestoreResult> {
  const manifest = await readManifest(dir);
  if (manifest.prefix !== bus.names.prefix)
    throw new AgentComError(
      ERROR_CODES.CONFLICT,
      `the backup in ${dir} is of prefix ${manifest.prefix}, this connection uses ${bus.names.prefix}`,
    );
  const result: RestoreResult = { streams: [] };
  // Buckets first: the task records should be there before submissions and reports are replayed.
  const ordered = [...manifest.streams].sort(
    (a, b) => Number(!a.name.startsWith('KV_')) - Number(!b.name.startsWith('KV_')),
  );
  for (const s of ordered) {
    const config = JSON.parse(await readFile(join(dir, `${s.name}.config.json`), 'utf8')) as StreamConfig;
    let created = false;
    try {
      const info = await bus.jsm.streams.info(s.name);
      if (info.state.messages > 0 && !opts.force)
        throw new AgentComError(
          ERROR_CODES.CONFLICT,
          `stream ${s.name} already holds ${info.state.messages} messages; restore into an empty deployment, or pass force to add to it`,
        );
    } catch (err) {
      if (err instanceof AgentComError) throw err;
      const { sealed: _sealed, ...rest } = config as StreamConfig & { sealed?: boolean };
      await bus.jsm.streams.add(rest);
      created = true;
    }
    let messages = 0;
    const lines = createInterface({
      input: createReadStream(join(dir, `${s.name}.jsonl`)),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    const inFlight: Promise<unknown>[] = [];
    for await (const text of lines) {
      if (!text) continue;
      const m = BackupMessageSchema.parse(JSON.parse(text));
      const h = natsHeaders();
      for (const [k, v] of m.headers) if (!DROPPED_HEADERS.test(k)) h.append(k, v);
      inFlight.push(bus.js.publish(m.subject, Buffer.from(m.data, 'base64'), { headers: h }));
      if (inFlight.length >= 256) await Promise.all(inFlight.splice(0));
      messages++;
    }
    await Promise.all(inFlight);
    result.streams.push({ name: s.name, created, messages });
  }
  return result;
}

export async function readManifest(dir: string): Promise<BackupManifest> {
  let text: string;
  try {
    text = await readFile(join(dir, 'manifest.json'), 'utf8');
  } catch {
    throw new AgentComError(ERROR_CODES.NOT_FOUND, `${dir} is not a backup (no manifest.json)`);
  }
  const parsed = BackupManifestSchema.safeParse(JSON.parse(text));
  if (!parsed.success)
    throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, `${dir}/manifest.json is not a backup manifest`, {
      path: parsed.error.issues[0]?.path.map(String) ?? [],
    });
  return parsed.data;
}

/** Backups in `root` (complete ones only), newest first. */
export async function listBackups(root: string): Promise<{ dir: string; manifest: BackupManifest }[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const out: { dir: string; manifest: BackupManifest }[] = [];
  for (const n of names) {
    if (n.endsWith('.partial')) continue;
    try {
      out.push({ dir: join(root, n), manifest: await readManifest(join(root, n)) });
    } catch {}
  }
  return out.sort((a, b) => b.manifest.createdAt - a.manifest.createdAt);
}
