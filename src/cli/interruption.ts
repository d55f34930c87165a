/**
 * @module cli/interruption
 * How a following command (`field watch`, `msg tail`) learns to stop: on SIGINT or SIGTERM, or
 * after its `--timeout-after`.
 */

/** Resolves on SIGINT/SIGTERM or after `ms` (when given); `dispose` removes the handlers. */
export function interruption(ms: number | undefined): {
  done: Promise<'signal' | 'timeout'>;
  dispose(): void;
} {
  let onSignal: () => void = () => {};
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<'signal' | 'timeout'>((resolve) => {
    onSignal = () => resolve('signal');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    if (ms !== undefined) timer = setTimeout(() => resolve('timeout'), ms);
  });
  return {
    done,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      clearTimeout(timer);
    },
  };
}
