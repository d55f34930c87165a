/**
 * @module hub-file
 * How to reach a hub, written by `agentcom hub` into its data directory (`<dataDir>/hub.json`) each
 * time it starts with an embedded nats-server, so that the CLI run from the same place finds it
 * the way it was started: its NATS URL, prefix and auth directory (the CLI then signs in with the
 * directory's admin seed). A hub on an external server (NATS_URL) writes none: the CLI finds that
 * server the same way the hub did. The file stays after the hub stops (the CLI then reports the hub
 * unreachable at the right address). It holds no secret. A file that is not valid is ignored by
 * readers, never trusted in part.
 */
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../runtime/atomic-file.js';

export const HUB_FILE = 'hub.json';
/** The data directory when neither `--data-dir` nor AGENTCOM_DATA_DIR is given (see config.ts). */
export const DEFAULT_DATA_DIR = '.agentcom';

export const HubFileSchema = z.object({
  v: z.literal(1),
  natsUrl: z.string().regex(/^(nats|tls|ws|wss):\/\/\S+$/),
  prefix: z.string().min(1),
  /** Absolute path of the auth directory the hub runs with; absent without authentication. */
  authDir: z.string().min(1).optional(),
  hubId: z.string().min(1),
  /** The hub's HTTP gateway, when it listens (docs/gateway.md). */
  gatewayUrl: z
    .string()
    .regex(/^https?:\/\/\S+$/)
    .optional(),
  /** Whether the hub spawned its own nats-server. */
  embedded: z.boolean(),
  pid: z.number().int().positive(),
  startedAt: z.number().int().positive(),
});
export type HubFile = z.infer<typeof HubFileSchema>;

export function hubFilePath(dataDir: string): string {
  return join(resolve(dataDir), HUB_FILE);
}

export async function writeHubFile(dataDir: string, info: HubFile): Promise<void> {
  await writeFileAtomic(hubFilePath(dataDir), `${JSON.stringify(HubFileSchema.parse(info), null, 2)}\n`);
}

/**
 * The hub file of `dataDir`, or undefined when there is none, it is not valid, or it is not to be
 * trusted: a file another user owns, or others may write, could send the CLI's requests (and its
 * admin signature) to a server of their choosing, so it is ignored (as git ignores a repository
 * another user owns).
 */
export function readHubFile(dataDir: string): HubFile | undefined {
  const path = hubFilePath(dataDir);
  let text: string;
  try {
    const st = statSync(path);
    if ((st.mode & 0o022) !== 0 || (process.getuid !== undefined && st.uid !== process.getuid()))
      return undefined;
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const r = HubFileSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
