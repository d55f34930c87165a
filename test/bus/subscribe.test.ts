import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Bus } from '../../src/bus/index.js';
import { requestTyped, subscribeTyped } from '../../src/bus/subscribe.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';
import { testBus } from './support.js';

const server = useNatsServer();
let bus: Bus;
beforeAll(async () => {
  bus = await testBus(server.url);
});
afterAll(() => bus.drain());

/** Holds the event loop for `ms` two turns from now, once what was sent before has left. */
function holdLoopSoon(ms: number): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() =>
      setImmediate(() => {
        const end = Date.now() + ms;
        while (Date.now() < end);
        resolve();
      }),
    ),
  );
}

describe('requestTyped()', () => {
  it('answers, refuses a bad reply, and says unavailable when nobody listens', async () => {
    const subject = uniqueName('svc');
    const sub = subscribeTyped(bus, subject, z.object({ n: z.number() }), (p, ctx) =>
      ctx.respond({ doubled: p.n * 2 }),
    );
    await bus.nc.flush();
    try {
      const out = await requestTyped(
        bus,
        subject,
        z.object({ n: z.number() }),
        { n: 21 },
        z.object({ doubled: z.number() }),
      );
      expect(out).toEqual({ doubled: 42 });
      await expect(
        requestTyped(bus, subject, z.object({ n: z.number() }), { n: 1 }, z.object({ doubled: z.string() })),
      ).rejects.toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD });
    } finally {
      sub.unsubscribe();
    }
    await expect(
      requestTyped(bus, uniqueName('nobody'), z.unknown(), {}, z.unknown(), 1_000),
    ).rejects.toMatchObject({ code: ERROR_CODES.UNAVAILABLE });
  });

  it('reads an answer that came while the event loop was held past the timeout: "no responders", not a timeout', async () => {
    // A standby probing a leader whose connection is gone, with its own loop busy: the server's
    // "no responders" arrives at once, and must not be taken for a slow leader (actors/leader).
    for (let i = 0; i < 3; i++) {
      const probe = requestTyped(bus, uniqueName('gone'), z.unknown(), {}, z.unknown(), 100).catch(
        (err: unknown) => err,
      );
      await holdLoopSoon(400);
      expect(await probe).toMatchObject({ code: ERROR_CODES.UNAVAILABLE });
    }
  });

  it('times out, with `timeout`, when a responder never answers', async () => {
    const subject = uniqueName('silent');
    const sub = subscribeTyped(bus, subject, z.unknown(), () => {});
    await bus.nc.flush();
    try {
      await expect(requestTyped(bus, subject, z.unknown(), {}, z.unknown(), 100)).rejects.toMatchObject({
        code: ERROR_CODES.TIMEOUT,
      });
    } finally {
      sub.unsubscribe();
    }
  });
});
