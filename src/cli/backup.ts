/**
 * @module cli/backup
 * `agentcom backup create|restore|list`: every stream and bucket of a deployment to a directory and
 * back (src/bus/backup.ts says what a backup holds and what restore does). `restore` refuses while
 * a hub holds the lease (stop the hubs first: a running hub would act on the stream as it fills)
 * and refuses streams that already hold messages; `--force` overrides both.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { LEASE_KEY } from '../../actors/leader/index.js';
import { createBackup, listBackups, restoreBackup } from '../bus/backup.js';
import { openKv } from '../bus/kv.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { LeaseSchema } from '../protocol/registration.js';
import { type ConnectionFlags, resolveConnection, withBus, withConnectionFlags } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

/** Where `create` writes and `list` looks without --out / --dir. */
const DEFAULT_BACKUP_ROOT = '.agentcom/backups';

async function createCommand(f: ConnectionFlags & { out?: string }, out: Output): Promise<ExitCode> {
  const dir = resolve(f.out ?? join(DEFAULT_BACKUP_ROOT, new Date().toISOString().replace(/[:.]/g, '-')));
  return withBus(resolveConnection(f), async (bus) => {
    const m = await createBackup(bus, dir);
    const messages = m.streams.reduce((a, s) => a + s.messages, 0);
    out.result({ dir, ...m }, [
      `backup of ${m.streams.length} streams and buckets (${messages} messages) in ${dir}`,
      ...m.streams.map((s) => `  ${s.name}: ${s.messages}`),
    ]);
    return EXIT.OK;
  });
}

async function restoreCommand(
  dir: string,
  f: ConnectionFlags & { force?: boolean },
  out: Output,
): Promise<ExitCode> {
  return withBus(resolveConnection(f), async (bus) => {
    if (!f.force) {
      // A fresh deployment has no lease bucket yet: nothing runs there.
      const lease = await openKv(bus, bus.names.buckets.leases, LeaseSchema)
        .then((kv) => kv.get(LEASE_KEY))
        .catch(() => null);
      if (lease && lease.value.expiresAt > Date.now())
        throw new AgentComError(
          ERROR_CODES.CONFLICT,
          `hub ${lease.value.holder} is running on this deployment; stop the hubs before a restore (or pass --force)`,
        );
    }
    const r = await restoreBackup(bus, resolve(dir), { force: f.force === true });
    out.result(r, [
      `restored ${r.streams.length} streams and buckets from ${dir}`,
      ...r.streams.map((s) => `  ${s.name}: ${s.messages} messages${s.created ? ' (created)' : ''}`),
    ]);
    out.note('start the hub: it provisions its durables and carries on from the restored state');
    return EXIT.OK;
  });
}

async function listCommand(f: { dir?: string; json?: boolean }, out: Output): Promise<ExitCode> {
  const root = resolve(f.dir ?? DEFAULT_BACKUP_ROOT);
  const all = await listBackups(root);
  out.result(
    all.map((b) => ({ dir: b.dir, createdAt: b.manifest.createdAt, prefix: b.manifest.prefix })),
    all.map(
      (b) =>
        `${b.dir}  ${new Date(b.manifest.createdAt).toISOString()}  prefix ${b.manifest.prefix}  ${b.manifest.streams.reduce((a, s) => a + s.messages, 0)} messages`,
    ),
  );
  if (!all.length) out.note(`no backups in ${root}`);
  return EXIT.OK;
}

export function registerBackupCommands(program: Command): void {
  const backup = program
    .command('backup')
    .description('back up every stream and bucket of a deployment, and restore them');

  withConnectionFlags(backup.command('create'))
    .description('write every stream and bucket to a directory')
    .option('--out <dir>', `the backup directory (default ${DEFAULT_BACKUP_ROOT}/<time>)`)
    .action((f: ConnectionFlags & { out?: string }) =>
      runCommand('backup create', f, (o) => createCommand(f, o)),
    );

  withConnectionFlags(backup.command('restore'))
    .description('write a backup back into an empty deployment (stop the hubs first)')
    .argument('<dir>', 'a backup directory (as `backup create` wrote it)')
    .option('--force', 'restore while a hub runs, or into streams that hold messages')
    .action((dir: string, f: ConnectionFlags & { force?: boolean }) =>
      runCommand('backup restore', f, (o) => restoreCommand(dir, f, o)),
    );

  backup
    .command('list')
    .description('list the complete backups in a directory, newest first')
    .option('--dir <dir>', `where to look (default ${DEFAULT_BACKUP_ROOT})`)
    .option('--json', 'print results as JSON')
    .action((f: { dir?: string; json?: boolean }) => runCommand('backup list', f, (o) => listCommand(f, o)));
}
