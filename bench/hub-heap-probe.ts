/**
 * Preloaded into a hub process by bench/scale.ts (`--expose-gc --import tsx --import <this>`,
 * with an IPC channel): on `{ type: 'heap' }` it collects garbage and answers with the process's
 * memory figures, so a bench reads the live heap the hub holds without touching the hub's code.
 */
process.on('message', (m: { type?: string }) => {
  if (m?.type !== 'heap') return;
  (globalThis as { gc?: () => void }).gc?.();
  process.send?.({
    type: 'heap',
    gc: typeof (globalThis as { gc?: unknown }).gc === 'function',
    ...process.memoryUsage(),
  });
});
// Listening refs the channel: unref it, so the probe never keeps the hub alive.
process.channel?.unref();
