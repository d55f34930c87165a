/**
 * @module agent/sidecar/dir-watch
 * Tells about files appearing or changing in a directory: `fs.watch` for low latency, plus a
 * periodic scan because `fs.watch` can miss events (network file systems, editors that rename, a
 * watcher started after the file was written). Names may be reported more than once; the consumer
 * must be idempotent. Hidden files (temp files of atomic writes) are never reported.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readdir } from 'node:fs/promises';

export interface DirWatch {
  /** Scan now (also done at start and every `pollMs`). */
  scan(): Promise<void>;
  close(): void;
}

export function watchDir(dir: string, onName: (name: string) => void, pollMs = 1_000): DirWatch {
  let closed = false;
  const report = (name: string) => {
    if (!closed && !name.startsWith('.')) onName(name);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, (_event, name) => {
      if (name) report(name.toString());
    });
    watcher.on('error', () => {
      // The scan keeps working without events.
      watcher?.close();
      watcher = undefined;
    });
  } catch {
    watcher = undefined;
  }
  const scan = async () => {
    if (closed) return;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const n of names.sort()) report(n);
  };
  const timer = setInterval(() => void scan(), pollMs);
  timer.unref();
  void scan();
  return {
    scan,
    close() {
      closed = true;
      clearInterval(timer);
      watcher?.close();
    },
  };
}
