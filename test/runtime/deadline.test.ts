import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadlineError, withDeadline } from '../../src/runtime/deadline.js';

/**
 * A loopback echo server in a process of its own: a peer that answers at once, even while this
 * process's event loop is held (one in this process could not answer then).
 */
const ECHO = `
const s = require('node:net').createServer((c) => { c.on('error', () => {}); c.pipe(c); });
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
`;
let echo: ChildProcess;
let port: number;
beforeAll(async () => {
  echo = spawn(process.execPath, ['-e', ECHO], { stdio: ['ignore', 'pipe', 'inherit'] });
  port = await new Promise<number>((resolve, reject) => {
    echo.stdout?.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
    echo.once('exit', (code) => reject(new Error(`echo server exited (${code})`)));
  });
});
afterAll(() => {
  echo.kill('SIGKILL');
});

function connectEcho(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Holds the event loop for `ms` (a long task of the process, not a wait). */
function hold(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

describe('withDeadline()', () => {
  it("passes the work's value and error through", async () => {
    await expect(withDeadline(Promise.resolve(7), 100, 'w')).resolves.toBe(7);
    const boom = new Error('boom');
    await expect(withDeadline(Promise.reject(boom), 100, 'w')).rejects.toBe(boom);
  });

  it('rejects with a DeadlineError when nothing answers', async () => {
    const never = new Promise<never>(() => {});
    const err = await withDeadline(never, 50, 'a silent peer').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadlineError);
    expect((err as DeadlineError).code).toBe('timeout');
    expect((err as DeadlineError).message).toContain('a silent peer');
  });

  it('an answer that arrived while the event loop was held past the deadline wins', async () => {
    const socket = await connectEcho();
    try {
      for (let i = 0; i < 3; i++) {
        const answer = new Promise<string>((resolve) => socket.once('data', (b) => resolve(b.toString())));
        socket.write(`ping ${i}`);
        const got = withDeadline(answer, 100, 'echo');
        // The write leaves in this turn; the echo comes back while the loop is held for 300 ms,
        // and sits in the socket when the deadline's timer fires.
        await new Promise<void>((r) =>
          setImmediate(() => {
            hold(300);
            r();
          }),
        );
        await expect(got).resolves.toBe(`ping ${i}`);
      }
    } finally {
      socket.destroy();
    }
  });
});
