/**
 * @module permissions
 * The NATS subject permissions of each kind of user, as data: what an agent may publish and
 * subscribe to, derived from the deployment's names (subjects.ts) and the agent's id. Everything
 * not listed is denied, so an agent touches only its own subjects: its hello, heartbeat, goodbye
 * and reports, its own inbox durable (pull, info, acks), its own reply inboxes, and task submission
 * when it is allowed to submit. Pure: it renders no config and grants nothing by itself; the hub's
 * auth directory (src/hub/auth) writes these lists into the nats-server config.
 *
 * What it does not guard: the content of what an agent publishes on its own subjects (the hub
 * validates payloads and fences reports by assignee and generation), nor users with full access
 * (hub, admin), which are trusted by design.
 */
import { AGENT_MESSAGING_OPS } from './message.js';
import type { Names } from './subjects.js';

/** Allow lists; an empty or absent list means nothing is allowed in that direction. */
export interface SubjectPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
}

export interface AgentPermissionOptions {
  /** Whether the agent may submit tasks (on its own `<p>.task.submit.<id>` and `<p>.api.task.submit.<id>`). */
  canSubmit?: boolean;
  /**
   * With `canSubmit`: the only queues it may submit to (inter-agent triggers: an agent that may
   * enqueue work for the `action` queue and nothing else). Absent: any queue.
   */
  submitQueues?: readonly string[];
  /** Pheromone type patterns it may emit (field.ts; `*` all types). Absent or empty: none. */
  emitTypes?: readonly string[];
  /** Pheromone type patterns it may claim. Absent or empty: none. */
  claimTypes?: readonly string[];
}

/**
 * The reply-inbox prefix an agent's connection must use (nats.js `inboxPrefix`): replies to its
 * requests (hello, JetStream API, PubAcks) and its pulled messages arrive under `<prefix>.>`, the
 * only subjects it may subscribe to, so no agent can receive another agent's replies or pulls.
 */
export function agentInboxPrefix(agentId: string): string {
  return `_INBOX.${agentId}`;
}

/**
 * Where the hub pushes a live copy of each message stored for an agent (message.ts): under its
 * reply-inbox prefix, the one subject tree it may subscribe to. A token no nats.js inbox uses.
 */
export function messagePushSubject(agentId: string): string {
  return `${agentInboxPrefix(agentId)}.msg`;
}

/** The JetStream API subject of one operation on one consumer. */
function consumerApi(op: 'MSG.NEXT' | 'INFO', stream: string, consumer: string): string {
  return `$JS.API.CONSUMER.${op}.${stream}.${consumer}`;
}

/**
 * What agent `agentId` may do.
 *
 * Publish: its own `hello`, `heartbeat`, `goodbye` and `report` subjects (reports are JetStream
 * publishes captured by the REPORTS stream; the hub takes the agent id from the subject, so this
 * list is what makes a report's sender unforgeable); pulling from and reading the info of its own
 * inbox durable; acking (ack/nak/term/in-progress) that durable's messages; and, with `canSubmit`,
 * its own task submission subjects. Not its own inbox subject: only the hub writes assignments.
 *
 * The stigmergy field: every agent may observe it (`field.observe.<id>`: the hub has the server
 * push the bucket's records to the agent's own inbox); it emits and claims
 * through its own `field.emit|claim.<id>.<type>` endpoints, for the type patterns it is granted
 * (`emitTypes`, `claimTypes`), and releases its own claims on `field.release.<id>`.
 *
 * Messaging: its own `<op>.<id>` subject of each messaging endpoint (`msg.send.<id>`, ...).
 *
 * Inspection (inspect.ts): its sidecar publishes its lifecycle machine's events on
 * `<p>.inspect.sidecar.<id>` while someone listens, which it learns from `<p>.inspecting`.
 *
 * Subscribe: its reply inboxes ({@link agentInboxPrefix}; the hub pushes its messages there), and
 * the inspection listens `<p>.inspecting` (who wants to see what; nothing secret).
 */
export function agentPermissions(
  n: Names,
  agentId: string,
  opts: AgentPermissionOptions = {},
): SubjectPermissions {
  const stream = n.streams.inbox;
  const durable = n.consumers.agentInbox(agentId);
  const publish = [
    n.subjects.agentHello(agentId),
    n.subjects.agentHeartbeat(agentId),
    n.subjects.agentGoodbye(agentId),
    n.subjects.agentReport(agentId),
    consumerApi('MSG.NEXT', stream, durable),
    consumerApi('INFO', stream, durable),
    `$JS.ACK.${stream}.${durable}.>`,
  ];
  // Its own submit subjects, not the shared ones: the hub scopes idempotency keys and backlog
  // limits by the submitter it reads from the subject.
  // With submitQueues, only the subjects naming those queues (the hub checks the payload's queue
  // is the subject's): the server itself refuses a submission to any other queue.
  if (opts.canSubmit && opts.submitQueues)
    for (const q of opts.submitQueues)
      publish.push(n.subjects.taskSubmitAs(agentId, q), n.subjects.apiTaskSubmitAs(agentId, q));
  else if (opts.canSubmit)
    publish.push(
      n.subjects.taskSubmitAs(agentId),
      n.subjects.taskSubmitAs(agentId, '*'),
      n.subjects.apiTaskSubmitAs(agentId),
      n.subjects.apiTaskSubmitAs(agentId, '*'),
    );
  publish.push(...fieldPermissions(n, agentId, opts));
  // Messaging: each endpoint on its own subject, so the hub reads the caller from it (message.ts).
  // Live copies of its messages arrive under its reply inboxes, which it may already subscribe to.
  for (const op of AGENT_MESSAGING_OPS) publish.push(n.subjects.apiMessagingAs(op, agentId));
  // Its sidecar's inspection events, on its own subject only (docs/protocol.md §11e).
  publish.push(n.subjects.inspect('sidecar', agentId));
  return {
    publish: { allow: publish },
    subscribe: { allow: [`${agentInboxPrefix(agentId)}.>`, n.subjects.inspecting] },
  };
}

/**
 * The field part of {@link agentPermissions}. No JetStream API at all: a consumer's deliver subject
 * is in the request body, out of reach of subject permissions, so an agent allowed to create one
 * could have the server push the bucket's records to any subject (the API's included). The hub
 * creates an agent's observations for it (`field.observe.<id>`), delivering under its own inbox.
 */
function fieldPermissions(n: Names, agentId: string, opts: AgentPermissionOptions): string[] {
  const typeFilter = (pattern: string) => (pattern === '*' ? '>' : pattern);
  return [
    n.subjects.apiFieldAs('observe', agentId),
    ...(opts.emitTypes ?? []).map((t) => n.subjects.apiFieldAs('emit', agentId, typeFilter(t))),
    ...(opts.claimTypes ?? []).map((t) => n.subjects.apiFieldAs('claim', agentId, typeFilter(t))),
    ...(opts.claimTypes?.length ? [n.subjects.apiFieldAs('release', agentId)] : []),
  ];
}
