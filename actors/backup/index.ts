/**
 * @module backup
 * Scheduled backups of the deployment's streams and buckets (run by the hub holding the lease).
 */
export { type BackupInput, type BackupMessage, BackupProcess } from './process.js';
