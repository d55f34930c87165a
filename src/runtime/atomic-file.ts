/**
 * @module atomic-file
 * Durable file replacement: write a temporary file beside the target, fsync it, rename it over the
 * target, then fsync the directory. A reader (or a process restarted after SIGKILL or power loss)
 * sees either the old content or the new, never a torn file. Used for the sidecar's queue file and
 * for credentials and configs, which are created with mode 0600 by default (`mode` to change).
 * Does not lock: one writer per file is the caller's rule.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o600: these files often hold secrets). */
  mode?: number;
  /** Create the parent directory (mode 0o700) when missing. Default true. */
  mkdir?: boolean;
}

export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  if (opts.mkdir !== false) await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const mode = opts.mode ?? 0o600;
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

/** fsync a directory so a rename in it survives a crash (a no-op where directories cannot be opened). */
export async function syncDir(dir: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms and file systems refuse to open or fsync a directory; the rename still happened.
  } finally {
    await fh?.close();
  }
}
