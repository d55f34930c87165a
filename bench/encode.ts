/**
 * JSON text to UTF-8 bytes, the two ways Node 20 offers, per call: `TextEncoder.encode` (a fresh
 * ArrayBuffer each time) and `Buffer.from` (a slice of a shared pool; what src/protocol/envelope.ts
 * `utf8` uses), for a task record's size and for a NATS command line's. Prints JSON.
 *   npx tsx bench/encode.ts [--n 500000]
 */
import { benchFlags } from './peers/common.js';

const N = benchFlags().number('n', 500_000, 1_000);
const record = JSON.stringify({ v: 1, metadata: { p: 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(39) } });
const command = 'HPUB $KV.agentcom_tasks.t01a24a3fc40f06148dc03c99 _INBOX.ABCDEFGHIJ.123 58 1500\r\n';
const textEncoder = new TextEncoder();

/** Nanoseconds per call, the better of two passes (the first warms the JIT). */
function nsPerCall(encode: (s: string) => Uint8Array, text: string): number {
  let best = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < 2; pass++) {
    let bytes = 0;
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) bytes += encode(text).length;
    if (bytes === 0) throw new Error('nothing encoded');
    best = Math.min(best, Number(process.hrtime.bigint() - t) / N);
  }
  return Math.round(best);
}

const result = Object.fromEntries(
  [
    ['record', record],
    ['command', command],
  ].map(([name, text]) => [
    name,
    {
      bytes: Buffer.byteLength(text!),
      textEncoderNs: nsPerCall((s) => textEncoder.encode(s), text!),
      bufferFromNs: nsPerCall((s) => Buffer.from(s, 'utf8'), text!),
    },
  ]),
);
process.stdout.write(`${JSON.stringify({ n: N, node: process.version, ...result }, null, 2)}\n`);
