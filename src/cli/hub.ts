/**
 * `agentcom hub`: validate configuration (flags over environment), start the hub, and shut it down
 * gracefully on SIGTERM/SIGINT (a second signal exits at once).
 */
import { loadHubConfig } from '../hub/config.js';
import { startHub } from '../hub/main.js';
import { AgentComError } from '../protocol/errors.js';

export interface HubFlags {
  natsUrl?: string;
  dataDir?: string;
  natsPort?: string;
  prefix?: string;
  hubId?: string;
  authDir?: string;
  logLevel?: string;
}

export async function runHub(flags: HubFlags): Promise<number> {
  let config: ReturnType<typeof loadHubConfig>;
  try {
    config = loadHubConfig(flags);
  } catch (err) {
    if (err instanceof AgentComError) {
      process.stderr.write(`agentcom hub: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let hub: Awaited<ReturnType<typeof startHub>>;
  try {
    hub = await startHub(config);
  } catch (err) {
    // A configuration the hub can only check while starting (e.g. an auth directory of another prefix).
    if (err instanceof AgentComError) {
      process.stderr.write(`agentcom hub: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    hub.log.info({ phase: 'shutdown', signal: sig }, 'signal received; shutting down');
    void hub.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const reason = await hub.exited;
  return reason === 'shutdown' || reason === 'normal' ? 0 : 1;
}
