import { randomBytes } from 'node:crypto';

let counter = 0;

/**
 * A name unique to this test run, safe as a NATS subject token, stream, consumer or bucket name
 * (letters, digits, '_' and '-'; no dots, no wildcards).
 */
export function uniqueName(prefix = 't'): string {
  counter += 1;
  return `${prefix}_${process.pid}_${counter}_${randomBytes(3).toString('hex')}`;
}
