/**
 * @module agent/sidecar/service-unit
 * The systemd user unit that keeps one agent's sidecar running (`agentcom agent add --service`):
 * started at login (or boot, with lingering), restarted when it dies, stopped with SIGTERM (its
 * goodbye). Pure text; writing and enabling it is the CLI's.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface SidecarUnitInput {
  agentId: string;
  /** The node binary and the `agentcom.js` of this installation. */
  node: string;
  agentcomJs: string;
  sidecarConfig: string;
}

export const sidecarUnitName = (agentId: string) => `agentcom-sidecar-${agentId}.service`;

/** `$XDG_CONFIG_HOME/systemd/user`, default `~/.config/systemd/user`. */
export function userUnitDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'systemd', 'user');
}

/**
 * One ExecStart word: systemd expands `%` specifiers and `$` variables there, and splits on
 * spaces, so `%` and `$` are doubled and a word with a space or a quote is quoted.
 */
function arg(word: string): string {
  const s = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /[\s"\\]/.test(s) ? `"${s.replace(/(["\\])/g, '\\$1')}"` : s;
}

export function sidecarUnit(u: SidecarUnitInput): string {
  return [
    '# Written by `agentcom agent add --service`; rewrite it by adding the agent again with --force.',
    '[Unit]',
    `Description=AgentCom sidecar for agent ${u.agentId}`,
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${[u.node, u.agentcomJs, 'sidecar', '--config', u.sidecarConfig].map(arg).join(' ')}`,
    '# SIGTERM: goodbye to the hub (it reclaims at once); queue.json is kept for the next start.',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    'Restart=always',
    'RestartSec=2',
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}
