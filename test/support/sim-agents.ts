/**
 * Spawning simulated agents (test/support/sim-agent.ts) as separate OS processes and following
 * their JSON-line events. `kill()` is SIGKILL: nothing runs in the agent after it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitUntil } from './eventually.js';
import { captureJsonLines } from './json-lines.js';

export interface SimAgentEvent {
  at: number;
  event: string;
  session?: string;
  taskId?: string;
  generation?: number;
  agentId?: string;
}

export interface SimAgentConfig {
  url: string;
  prefix: string;
  agentId: string;
  capabilities?: string[];
  queues?: string[];
  slots?: number;
  workMs?: number;
  /** Up to this many ms more per task, at random. */
  workJitterMs?: number;
  failTimes?: number;
  retryable?: boolean;
  mode?: 'work' | 'silent';
}

export interface SimAgent {
  readonly config: SimAgentConfig;
  readonly proc: ChildProcess;
  readonly events: SimAgentEvent[];
  completed(): string[];
  waitFor(what: string, predicate: (events: SimAgentEvent[]) => boolean, timeout?: number): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

const script = fileURLToPath(new URL('./sim-agent.ts', import.meta.url));

export async function spawnSimAgent(config: SimAgentConfig): Promise<SimAgent> {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { events, stderr } = captureJsonLines<SimAgentEvent>(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const agent: SimAgent = {
    config,
    proc,
    events,
    completed: () => events.filter((e) => e.event === 'completed').map((e) => e.taskId!),
    waitFor: (what, predicate, timeout = 20_000) =>
      waitUntil(
        () => {
          if (proc.exitCode !== null && !predicate(events))
            throw new Error(`agent ${config.agentId} exited (${proc.exitCode}): ${stderr()}`);
          return predicate(events);
        },
        `${config.agentId}: ${what}`,
        { timeout },
      ),
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  await agent.waitFor('ready', (ev) => ev.some((e) => e.event === 'ready'), 30_000);
  return agent;
}
