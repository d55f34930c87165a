/**
 * @module agent/sidecar-config
 * The sidecar's configuration file (`sidecar.json`, written by `agentcom agent add`, mode 0600).
 * Relative paths are resolved against the file's own directory, so the directory `agent add`
 * writes can be copied to the agent's machine as it is. The seed itself is never in this file:
 * `nats.nkeySeedFile` points at it.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { AgentHelloSchema } from '../protocol/agent.js';
import { parseJsonText } from '../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { AgentIdSchema } from '../protocol/ids.js';

export const SIDECAR_CONFIG_FILE = 'sidecar.json';

export const SidecarConfigSchema = z
  .object({
    v: z.literal(1),
    agentId: AgentIdSchema.describe('The agent this sidecar speaks for.'),
    nats: z
      .object({
        servers: z
          .union([z.string(), z.array(z.string()).min(1)])
          .describe('NATS server URL(s) of the hub, e.g. nats://hub.example:4223'),
        prefix: z.string().default('agentcom').describe('Subject/stream prefix of the deployment.'),
        nkeySeedFile: z
          .string()
          .optional()
          .describe('File holding the agent’s NKey user seed (mode 0600), relative to this file.'),
      })
      .describe('How to reach the hub.'),
    hello: AgentHelloSchema.omit({ v: true }).describe(
      'What the agent announces: capabilities, queues, slots, name.',
    ),
    workDir: z
      .string()
      .default('work')
      .describe('Holds queue.json, tasks/ and results/ (relative to this file).'),
    wake: z
      .object({
        command: z
          .array(z.string().min(1))
          .min(1)
          .describe('argv of the wake command, e.g. ["openclaw","cron","wake","--mode","now"]'),
        cwd: z.string().optional().describe('Working directory of the wake command (default: the work dir).'),
        env: z.record(z.string(), z.string()).optional().describe('Extra environment for the wake command.'),
        timeoutMs: z.int().positive().default(600_000).describe('Kill a wake command running longer (ms).'),
        maxFailures: z
          .int()
          .min(1)
          .max(100)
          .default(3)
          .describe(
            'After this many failed wakes in a row for one task (non-zero exit, a signal, or no start), the sidecar reports the task failed (code wake_failed, with the exit code and the end of stderr) so it moves on',
          ),
      })
      .optional()
      .describe('Run when work arrives; without it the agent is expected to watch tasks/ itself.'),
    messages: z
      .object({
        dir: z
          .string()
          .optional()
          .describe(
            'Where incoming messages are written, one file each (default <workDir>/messages; relative to this file).',
          ),
        wakeOnDirect: z
          .boolean()
          .default(false)
          .describe('Run the wake command when a direct message arrives (needs `wake`).'),
      })
      .optional()
      .describe(
        'Relay the agent’s messages: each incoming one written to a file (then acked), and files in outbox/ sent (docs/protocol.md §13).',
      ),
  })
  .superRefine((c, ctx) => {
    if (c.messages?.wakeOnDirect && !c.wake)
      ctx.addIssue({
        code: 'custom',
        path: ['messages', 'wakeOnDirect'],
        message: 'messages.wakeOnDirect needs a wake command (`wake.command`)',
      });
  })
  .describe('agentcom sidecar configuration.');
export type SidecarConfig = z.infer<typeof SidecarConfigSchema>;
export type SidecarConfigInput = z.input<typeof SidecarConfigSchema>;

/** A loaded config with every path made absolute. */
export interface ResolvedSidecarConfig extends SidecarConfig {
  /** Directory of the config file. */
  baseDir: string;
  /** With `dir` absolute, always set. */
  messages?: NonNullable<SidecarConfig['messages']> & { dir: string };
}

/** Read and validate a sidecar config file. @throws AgentComError `not_found` or `invalid_payload`. */
export async function loadSidecarConfig(path: string): Promise<ResolvedSidecarConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AgentComError(
      ERROR_CODES.NOT_FOUND,
      `cannot read sidecar config ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const c = parseJsonText(SidecarConfigSchema, text, `sidecar config ${path}`);
  const baseDir = dirname(resolve(path));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const { messages, ...rest } = c;
  return {
    ...rest,
    baseDir,
    workDir: abs(c.workDir),
    nats: { ...c.nats, ...(c.nats.nkeySeedFile ? { nkeySeedFile: abs(c.nats.nkeySeedFile) } : {}) },
    ...(c.wake ? { wake: { ...c.wake, ...(c.wake.cwd ? { cwd: abs(c.wake.cwd) } : {}) } } : {}),
    ...(messages
      ? {
          messages: { ...messages, dir: messages.dir ? abs(messages.dir) : join(abs(c.workDir), 'messages') },
        }
      : {}),
  };
}
