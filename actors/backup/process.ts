/**
 * @module backup/process
 * Scheduled backups (the hub holding the lease takes them): every `intervalMs`, a backup of every
 * stream and bucket of the deployment (src/bus/backup.ts) into `<dir>/<time>`, then the oldest
 * beyond `keep` are deleted. A backup that fails is logged and tried again at the next interval;
 * a half-written one never looks complete (it is written as `<name>.partial` and renamed).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createBackup, listBackups } from '../../src/bus/backup.js';
import type { Bus } from '../../src/bus/connection.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import { backupName, backupsToPrune } from './state.js';

export interface BackupInput {
  bus: Bus;
  log: Logger;
  dir: string;
  intervalMs: number;
  keep: number;
}

export type BackupMessage = { type: 'tick' };

export class BackupProcess implements Server<BackupMessage> {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly log: Logger;

  private constructor(private readonly input: BackupInput) {
    this.log = input.log.child({ actor: 'backup' });
  }

  static start(input: BackupInput, ctx: ServerContext): BackupProcess {
    const b = new BackupProcess(input);
    b.timer = setInterval(() => ctx.send({ type: 'tick' }), input.intervalMs);
    b.timer.unref();
    return b;
  }

  handle(_msg: BackupMessage): void {
    if (this.running) return;
    this.running = this.take().finally(() => {
      this.running = undefined;
    });
  }

  async terminate(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async take(): Promise<void> {
    const { bus, dir, keep } = this.input;
    const started = Date.now();
    try {
      const m = await createBackup(bus, join(dir, backupName(started)));
      const messages = m.streams.reduce((a, s) => a + s.messages, 0);
      this.log.info(
        { phase: 'backup', streams: m.streams.length, messages, ms: Date.now() - started },
        'backup taken',
      );
      for (const old of backupsToPrune(await listBackups(dir), keep))
        await rm(old.dir, { recursive: true, force: true });
    } catch (err) {
      this.log.error({ err, phase: 'backup' }, 'backup failed; the next interval tries again');
    }
  }
}
