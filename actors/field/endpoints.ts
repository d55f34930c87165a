/**
 * @module field/endpoints
 * The `field.*` endpoints of the hub's API. Trusted clients (hub and admin users) call
 * `field.<op>` and may name who they act as (`by`). An agent calls its own
 * `field.emit.<id>.<type>`, `field.claim.<id>.<type>` and `field.release.<id>`: the hub takes the
 * caller from the subject (so `source` and `claimedBy` cannot be forged) and refuses a payload whose
 * type is not the subject's (`forbidden`), so the types its permissions allow are the ones it can
 * emit and claim. Reads (get, list, stats, history, observers) are for trusted clients; agents observe by
 * watching the bucket (docs/protocol.md §11b).
 */

import type { LiveLimits } from '../../src/bus/live-limits.js';
import { createPushedWatch, PUSHED_WATCH_HEARTBEAT_MS } from '../../src/bus/pushed-watch.js';
import type { AgentcomService, RequestContext } from '../../src/bus/service.js';
import { EmptyRequestSchema } from '../../src/protocol/api.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import {
  FieldClaimReplySchema,
  FieldEmitRequestSchema,
  FieldHistoryReplySchema,
  FieldHistoryRequestSchema,
  FieldListReplySchema,
  FieldListRequestSchema,
  FieldObserveReplySchema,
  type FieldObserveRequest,
  FieldObserveRequestSchema,
  FieldObserversReplySchema,
  FieldObserversRequestSchema,
  FieldPromoteRequestSchema,
  FieldRefSchema,
  FieldStatsReplySchema,
  type Pheromone,
  PheromoneReplySchema,
  patternKeyFilter,
} from '../../src/protocol/field.js';
import { rateFor } from '../../src/protocol/limits.js';
import { agentInboxPrefix } from '../../src/protocol/permissions.js';
import { kvStream, kvSubject, parseFieldSubject } from '../../src/protocol/subjects.js';
import type { TaskSubmitInput } from '../../src/protocol/task.js';
import { KeyedRateLimiter } from '../../src/runtime/rate-limit.js';
import type { AssignReply } from '../task-queue/index.js';
import { agentObserverName, selectObservers, sharedObserverScan, trustedObserverName } from './observers.js';
import { auditHistory, countExpired, fieldCounts, listPheromones, livePheromones } from './query.js';
import { claim, emit, end, type FieldStore, findKey, getLive, markPromoted, release } from './store.js';

const one = (pheromone: Pheromone) => ({ v: 1 as const, pheromone });
/** A record with its payload left out (`payloads: false`). */
const withoutPayload = <T extends Pheromone>(p: T): T => ({ ...p, payload: {} });

export function registerFieldEndpoints(
  svc: AgentcomService,
  store: FieldStore,
  submit: (submit: TaskSubmitInput) => Promise<AssignReply>,
  limits: LiveLimits,
  /** The Field actor's id -> key index (null when it is not running: a direct get then). */
  indexedKey: (id: string) => Promise<string | null | undefined>,
): void {
  const names = store.bus.names;
  // An agent's emits, claims and releases share one bucket (protocol/limits.ts, `field`).
  const rate = new KeyedRateLimiter((id) => rateFor(limits.current, id, 'field'));
  const observeRate = new KeyedRateLimiter((id) => rateFor(limits.current, id, 'observes'));
  /**
   * The key of pheromone `id`: from `type` when the caller names it, else the Field actor's index.
   * For a trusted caller an id the index does not hold yet (an emit a moment ago) is looked up in
   * the bucket (one direct get, dearer the larger the bucket); an agent gets `not_found`, so no
   * agent can make the server scan the bucket on demand.
   */
  const keyOf = async (id: string, type?: string, opts: { lookup: boolean } = { lookup: true }) => {
    let key = type !== undefined ? `${id}.${type}` : await indexedKey(id).catch(() => undefined);
    if (!key && opts.lookup) key = await findKey(store, id);
    if (!key) throw new AgentComError(ERROR_CODES.NOT_FOUND, `pheromone ${id} is not in the field`);
    return key;
  };
  /** The agent and type an agent's subject names; the type must be `type` when given. */
  const caller = (op: 'emit' | 'claim' | 'release' | 'observe', ctx: RequestContext, type?: string) => {
    const from = parseFieldSubject(names, op, ctx.subject);
    if (!from)
      throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, `not a field ${op} subject: ${ctx.subject}`);
    if ((op === 'emit' || op === 'claim') && from.type === undefined)
      throw new AgentComError(
        ERROR_CODES.INVALID_PAYLOAD,
        `field.${op}.<agent id>.<type>: the subject must name the type`,
      );
    if (type !== undefined && from.type !== undefined && from.type !== type)
      throw new AgentComError(
        ERROR_CODES.FORBIDDEN,
        `the subject names type ${from.type}, the pheromone is ${type}: an agent emits and claims only the types its subject names`,
      );
    // Opening an observation makes a consumer on the server: its own, smaller budget.
    const wait = (op === 'observe' ? observeRate : rate).take(from.agentId, Date.now());
    if (wait > 0)
      throw new AgentComError(
        ERROR_CODES.RATE_LIMITED,
        `agent ${from.agentId} is over its field ${op} rate`,
        {
          retryAfterMs: wait,
        },
      );
    return from;
  };

  svc.addEndpoint('field.emit', {
    input: FieldEmitRequestSchema,
    output: PheromoneReplySchema,
    description: 'Deposit a pheromone (trusted clients; `by` is recorded as its source).',
    handler: async (req) => one((await emit(store, req, req.by ?? 'api')).pheromone),
  });
  svc.addEndpoint('field.emit.>', {
    input: FieldEmitRequestSchema,
    output: PheromoneReplySchema,
    description: 'Deposit a pheromone as the agent the subject names (field.emit.<id>.<type>).',
    handler: async (req, ctx) => {
      const { agentId } = caller('emit', ctx, req.type);
      return one((await emit(store, req, agentId)).pheromone);
    },
  });
  svc.addEndpoint('field.claim', {
    input: FieldRefSchema,
    output: FieldClaimReplySchema,
    description: 'Claim a pheromone (first responder wins; trusted clients claim as `by`).',
    handler: async ({ id, type, by }) => ({
      v: 1 as const,
      ...(await claim(store, await keyOf(id, type), by ?? 'api')),
    }),
  });
  svc.addEndpoint('field.claim.>', {
    input: FieldRefSchema,
    output: FieldClaimReplySchema,
    description: 'Claim a pheromone as the agent the subject names (field.claim.<id>.<type>).',
    handler: async ({ id }, ctx) => {
      const { agentId, type } = caller('claim', ctx);
      // The key names the type, so an agent allowed some types cannot reach another's pheromone.
      return { v: 1 as const, ...(await claim(store, `${id}.${type}`, agentId)) };
    },
  });
  svc.addEndpoint('field.release', {
    input: FieldRefSchema,
    output: PheromoneReplySchema,
    description: 'Release any claim on a pheromone (trusted clients).',
    handler: async ({ id, type, by }) => one(await release(store, await keyOf(id, type), by ?? 'api')),
  });
  svc.addEndpoint('field.release.>', {
    input: FieldRefSchema,
    output: PheromoneReplySchema,
    description: 'Release the caller’s own claim (field.release.<id>); forbidden for another’s.',
    handler: async ({ id, type }, ctx) => {
      const { agentId } = caller('release', ctx);
      return one(
        await release(store, await keyOf(id, type, { lookup: false }), agentId, { holder: agentId }),
      );
    },
  });
  svc.addEndpoint('field.remove', {
    input: FieldRefSchema,
    output: PheromoneReplySchema,
    description: 'Withdraw a pheromone now (audited as removed).',
    handler: async ({ id, type, by }) => {
      const last = await end(store, await keyOf(id, type), 'removed', by ?? 'api');
      if (!last) throw new AgentComError(ERROR_CODES.NOT_FOUND, `pheromone ${id} is not in the field`);
      return one(last);
    },
  });
  svc.addEndpoint('field.promote', {
    input: FieldPromoteRequestSchema,
    output: PheromoneReplySchema,
    description: 'Turn a pheromone into a task; its completion emits completion.<type>.',
    handler: async (req) => {
      const key = await keyOf(req.id);
      const { value: p } = await getLive(store, key);
      if (p.taskId !== null) return one(p);
      // Refused before the task exists: a claimant is doing this work already.
      if (p.claimedBy !== null)
        throw new AgentComError(ERROR_CODES.INVALID_STATE, `pheromone ${p.id} is claimed by ${p.claimedBy}`);
      const r = await submit({
        v: 1,
        title: req.title ?? p.type,
        description: JSON.stringify({ selector: p.selector, payload: p.payload }, null, 2),
        ...(req.queue ? { queue: req.queue } : {}),
        ...(req.priority ? { priority: req.priority } : {}),
        idempotencyKey: `pheromone:${p.id}`,
        submittedBy: `field:${p.source}`.slice(0, 64),
        metadata: { pheromone: p.id, pheromoneType: p.type, selector: p.selector },
      });
      if (!r.ok) throw AgentComError.fromWire(r.error);
      return one(await markPromoted(store, key, r.task.id, 'api'));
    },
  });
  const observe = async (req: FieldObserveRequest, consumer: string) => {
    const r = await createPushedWatch(store.bus, {
      stream: kvStream(names.buckets.field),
      name: consumer,
      deliverSubject: req.deliverSubject,
      filterSubject: kvSubject(names.buckets.field, patternKeyFilter(req.pattern)),
      ...(req.startSeq !== undefined ? { startSeq: req.startSeq } : {}),
    });
    return { v: 1 as const, consumer, startedAt: r.startedAt, heartbeatMs: PUSHED_WATCH_HEARTBEAT_MS };
  };
  svc.addEndpoint('field.observe', {
    input: FieldObserveRequestSchema,
    output: FieldObserveReplySchema,
    description:
      'Have the server push the live pheromones matching a pattern, then every change, to an inbox.',
    handler: (req) => observe(req, trustedObserverName(req.deliverSubject)),
  });
  svc.addEndpoint('field.observe.>', {
    input: FieldObserveRequestSchema,
    output: FieldObserveReplySchema,
    description:
      'Observe as the agent the subject names (field.observe.<id>): delivered under its own inbox.',
    handler: (req, ctx) => {
      const { agentId } = caller('observe', ctx);
      if (!req.deliverSubject.startsWith(`${agentInboxPrefix(agentId)}.`))
        throw new AgentComError(
          ERROR_CODES.FORBIDDEN,
          `an agent observes into its own inbox: deliverSubject must start with ${agentInboxPrefix(agentId)}.`,
          { path: ['deliverSubject'] },
        );
      // Named by agent and slot: one agent holds at most OBSERVE_SLOTS consumers.
      return observe(req, agentObserverName(agentId, req.slot));
    },
  });
  const observers = sharedObserverScan(store);
  svc.addEndpoint('field.observers', {
    input: FieldObserversRequestSchema,
    output: FieldObserversReplySchema,
    description: 'Who observes the field: each observation’s agent, slot and pattern (its consumer).',
    handler: async (req) => {
      const { observers: all, truncated } = await observers();
      return { v: 1 as const, ...selectObservers(all, req), truncated };
    },
  });
  svc.addEndpoint('field.get', {
    input: FieldRefSchema,
    output: PheromoneReplySchema,
    description: 'One live pheromone.',
    handler: async ({ id, type }) => one((await getLive(store, await keyOf(id, type))).value),
  });
  svc.addEndpoint('field.list', {
    input: FieldListRequestSchema,
    output: FieldListReplySchema,
    description: 'Live pheromones matching a pattern, newest first.',
    handler: async (req) => {
      const page = listPheromones(await livePheromones(store), req);
      return {
        v: 1 as const,
        ...page,
        pheromones: req.payloads === false ? page.pheromones.map(withoutPayload) : page.pheromones,
      };
    },
  });
  svc.addEndpoint('field.stats', {
    input: EmptyRequestSchema,
    output: FieldStatsReplySchema,
    description: 'Counts: active, claimed, expired, live per type.',
    handler: async () => ({
      v: 1 as const,
      ...fieldCounts(await livePheromones(store)),
      expired: await countExpired(store),
    }),
  });
  svc.addEndpoint('field.history', {
    input: FieldHistoryRequestSchema,
    output: FieldHistoryReplySchema,
    description: 'The audit trail by pattern and time, oldest first.',
    handler: async (req) => {
      const page = await auditHistory(store, req);
      return {
        v: 1 as const,
        ...page,
        events: req.payloads === false ? page.events.map(withoutPayload) : page.events,
      };
    },
  });
}
