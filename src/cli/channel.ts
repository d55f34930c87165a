/**
 * @module cli/channel
 * `agentcom channel create|list|join|leave|post|history|invite|members|remove`: channels
 * (`#name`; public or invite-only; `#room` is the built-in one for humans and agents) through the
 * hub's messaging endpoints. Who acts is settled as for `msg` (msg.ts): an agent's own connection,
 * or a trusted one acting `--as <agent>`; `join` and `leave` are an agent's, the rest may also be
 * done by the trusted connection itself (it sees every channel and may post without joining). A
 * channel is named `#name` or `name`. Flags are checked before connecting.
 */
import type { Command } from 'commander';
import type { ChannelInfo } from '../protocol/message.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { flagError, formatTime, table, truncate } from './format.js';
import {
  agentIdFlag,
  channelName,
  type HistoryFlags,
  historyCommand,
  historyRequest,
  identify,
  type MsgFlags,
  type SendFlags,
  sendCommand,
  withIdentityFlags,
  withMessaging,
} from './msg.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

function channelRows(list: ChannelInfo[]): string[] {
  const joined = list.some((c) => c.joined !== undefined);
  return table(
    ['NAME', 'VISIBILITY', 'MEMBERS', ...(joined ? ['JOINED'] : []), 'CREATED BY', 'DESCRIPTION'],
    list.map((c) => [
      `#${c.name}`,
      c.visibility === 'invite' ? 'invite-only' : 'public',
      String(c.members),
      ...(joined ? [c.joined ? 'yes' : 'no'] : []),
      c.createdBy,
      truncate(c.description, 60) || '-',
    ]),
  );
}

const nameArg = (text: string) => channelName(text, 'name', '<name>');

/** One call on one channel by name: the name is checked, then `run` acts. */
function onChannel(
  command: string,
  needsAgent: boolean,
  run: (
    name: string,
    s: Parameters<Parameters<typeof withMessaging>[1]>[0],
    out: Output,
  ) => Promise<ExitCode>,
) {
  return (text: string, f: MsgFlags) =>
    runCommand(command, f, async (out) => {
      const name = nameArg(text);
      const who = await identify(f, needsAgent ? command : undefined);
      return withMessaging(who, (s) => run(name, s, out));
    });
}

export function registerChannelCommands(program: Command): void {
  const channel = program
    .command('channel')
    .description('channels (#name): create, list, join, leave, post, history, invite, members, remove');

  withIdentityFlags(channel.command('create'))
    .description('create a channel (an agent creating it joins it)')
    .argument('<name>', '#name or name: 1-64 of a-z 0-9 _ -')
    .option('--invite-only', 'only invited agents may join (default: anyone may)')
    .option('--description <text>', 'what it is for, at most 500 characters')
    .action((text: string, f: MsgFlags & { inviteOnly?: boolean; description?: string }) =>
      runCommand('channel create', f, async (out) => {
        const name = nameArg(text);
        if (f.description !== undefined && f.description.length > 500)
          throw flagError(
            'description',
            `--description is at most 500 characters, got ${f.description.length}`,
          );
        const who = await identify(f);
        return withMessaging(who, async (s) => {
          const c = await s.client.channelCreate({
            name,
            visibility: f.inviteOnly ? 'invite' : 'public',
            ...(f.description !== undefined ? { description: f.description } : {}),
            ...s.actAs,
          });
          out.result({ v: 1, channel: c }, `#${c.name}`);
          out.note(
            `created #${c.name} (${c.visibility === 'invite' ? 'invite-only' : 'public'}) as ${c.createdBy}`,
          );
          return EXIT.OK;
        });
      }),
    );

  withIdentityFlags(channel.command('list'))
    .description('the channels the caller may see, with member counts')
    .action((f: MsgFlags) =>
      runCommand('channel list', f, async (out) => {
        const who = await identify(f);
        return withMessaging(who, async (s) => {
          const channels = await s.client.channelList(s.actAs);
          out.result({ v: 1, channels }, channelRows(channels));
          return EXIT.OK;
        });
      }),
    );

  withIdentityFlags(channel.command('join'))
    .description(
      'join a channel (an invite-only one needs an invitation); its posts reach the mailbox from now on',
    )
    .argument('<name>', '#name or name')
    .action(
      onChannel('channel join', true, async (name, s, out) => {
        const c = await s.client.channelJoin(name, s.actAs);
        out.result({ v: 1, channel: c }, `joined #${c.name}`);
        return EXIT.OK;
      }),
    );

  withIdentityFlags(channel.command('leave'))
    .description('leave a channel (idempotent)')
    .argument('<name>', '#name or name')
    .action(
      onChannel('channel leave', true, async (name, s, out) => {
        const left = await s.client.channelLeave(name, s.actAs);
        out.result({ v: 1, left }, left ? `left #${name}` : `${s.acting} is not a member of #${name}`);
        return EXIT.OK;
      }),
    );

  withIdentityFlags(channel.command('post'))
    .description('post to a channel (an agent must be a member); prints the seq')
    .argument('<name>', '#name or name')
    .argument('[body...]', 'the text; - reads it from stdin')
    .option('--title <text>', 'a title, at most 200 characters')
    .option('--data <json>', 'a JSON object carried beside the text')
    .option('--client-id <key>', 'idempotency key: a repeat returns the first message, not a copy')
    .option('--sender <name>', 'trusted connection: post as this human (default operator)')
    .action((name: string, body: string[], f: SendFlags) =>
      runCommand('channel post', f, (out) => sendCommand(body, { ...f, channel: nameArg(name) }, out)),
    );

  withIdentityFlags(channel.command('history'))
    .description("a channel's posts, oldest first (an agent must be a member)")
    .argument('<name>', '#name or name')
    .option('--after <seq>', 'start after this seq (the `next` a page printed)')
    .option('--limit <n>', 'page size, 1-1000 (default 100; 1000 with --all)')
    .option('--all', 'follow every page to the end')
    .action((name: string, f: HistoryFlags) =>
      runCommand('channel history', f, (out) =>
        historyCommand(historyRequest({ ...f, channel: nameArg(name) }), f, out),
      ),
    );

  withIdentityFlags(channel.command('invite'))
    .description('invite an agent to a channel (its creator, a member, or a trusted connection)')
    .argument('<name>', '#name or name')
    .argument('<agent>', 'the agent invited')
    .action((text: string, agent: string, f: MsgFlags) =>
      runCommand('channel invite', f, async (out) => {
        const name = nameArg(text);
        const req = agentIdFlag(agent, 'agent', '<agent>');
        const who = await identify(f);
        return withMessaging(who, async (s) => {
          const c = await s.client.channelInvite(name, req, s.actAs);
          out.result({ v: 1, channel: c }, `invited ${req} to #${c.name}`);
          return EXIT.OK;
        });
      }),
    );

  withIdentityFlags(channel.command('members'))
    .description("a channel's members, with when each joined")
    .argument('<name>', '#name or name')
    .action(
      onChannel('channel members', false, async (name, s, out) => {
        const r = await s.client.channelMembers(name, s.actAs);
        out.result(
          r,
          r.members.length
            ? table(
                ['AGENT', 'JOINED', 'POSTS AFTER'],
                r.members.map((m) => [m.agent, formatTime(m.joinedAt), `#${m.joinedSeq}`]),
              )
            : [],
        );
        if (!r.members.length) out.note(`#${name} has no members`);
        return EXIT.OK;
      }),
    );

  withIdentityFlags(channel.command('remove'))
    .description('remove a channel and its memberships (its creator or a trusted connection; not #room)')
    .argument('<name>', '#name or name')
    .action(
      onChannel('channel remove', false, async (name, s, out) => {
        const c = await s.client.channelRemove(name, s.actAs);
        out.result({ v: 1, channel: c }, `removed #${c.name}`);
        out.note('its posts stay stored until retention removes them');
        return EXIT.OK;
      }),
    );
}
