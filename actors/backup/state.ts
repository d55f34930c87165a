/**
 * @module backup/state
 * Which scheduled backups to delete: everything beyond the newest `keep`. Pure.
 */

/** `backups` newest first (as listBackups returns them): the ones past the newest `keep`. */
export function backupsToPrune<T>(backups: readonly T[], keep: number): T[] {
  return backups.slice(Math.max(1, keep));
}

/** The directory name of a backup taken at `at` (sortable, no characters a shell must quote). */
export function backupName(at: number): string {
  return new Date(at).toISOString().replace(/[:.]/g, '-');
}
