/**
 * @module inspect
 * Live XState inspection over NATS (docs/protocol.md §11e). Every AgentFSM (on the leading hub),
 * every hub's supervision tree and every sidecar's lifecycle machine can publish inspection events
 * in the format of `@statelyai/inspect` (its `StatelyInspectionEvent`: `@xstate.actor`,
 * `@xstate.event`, `@xstate.snapshot`, with `sessionId`, `rootId`, `createdAt`...), one event per
 * message on `<p>.inspect.<source>.<id>`.
 *
 * They do so only while someone listens: a listener publishes an {@link InspectListen} on
 * `<p>.inspecting` at least every `ttlMs / 3`, naming the targets it wants (`agent.a1`,
 * `agent.*`, `hub.*`, `sidecar.a1`); a publisher attaches its inspection while some unexpired
 * listen names one of its targets, and detaches when the last expires. With no listener nothing
 * is attached, so inspection costs the actors nothing. Session and root ids are prefixed with the
 * source and id (`agent:a1:x:3`), since XState numbers them per process.
 *
 * Not guaranteed: events are core NATS messages (at most once); a listener that starts late
 * misses what came before (the publisher sends each inspected actor's `@xstate.actor`, with its
 * machine `definition` and current snapshot, when inspection attaches and again when a new listener
 * names it while attached, so each listener's picture is whole from its first listen on).
 * Imports zod only.
 */
import { z } from 'zod';

export const INSPECT_SOURCES = ['agent', 'hub', 'sidecar'] as const;
export type InspectSource = (typeof INSPECT_SOURCES)[number];

/** A target: `<source>.<id>` or `<source>.*` (ids are subject tokens; hub ids sanitized). */
export const InspectTargetSchema = z
  .string()
  .regex(
    /^(agent|hub|sidecar)\.(\*|[A-Za-z0-9_-]{1,64})$/,
    'a target is <agent|hub|sidecar>.<id or *>, e.g. agent.a1 or hub.*',
  );

/** How long one listen lasts without being repeated, ms. */
export const INSPECT_LISTEN_TTL_MS = 10_000;

export const InspectListenSchema = z
  .strictObject({
    v: z.literal(1),
    listener: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .describe('Who listens (any stable id of its own).'),
    targets: z.array(InspectTargetSchema).min(1).max(64),
    ttlMs: z
      .int()
      .min(1_000)
      .max(60_000)
      .default(INSPECT_LISTEN_TTL_MS)
      .describe('Until when this listen holds; repeat it before (every ttlMs / 3).'),
  })
  .describe('A listener asking for inspection events (on `<p>.inspecting`).');
export type InspectListen = z.infer<typeof InspectListenSchema>;

/** One `@statelyai/inspect` event, as published (checked loosely: its shape is that package's). */
export const InspectionEventSchema = z
  .looseObject({
    type: z.enum(['@xstate.actor', '@xstate.event', '@xstate.snapshot']),
    sessionId: z.string(),
    rootId: z.string().optional(),
    createdAt: z.string(),
    _version: z.string().optional(),
  })
  .describe('A StatelyInspectionEvent of @statelyai/inspect (one per message on <p>.inspect.<source>.<id>).');
export type InspectionEvent = z.infer<typeof InspectionEventSchema>;

/** Whether a listen's target names `source`/`id`. */
export function targetMatches(target: string, source: InspectSource, id: string): boolean {
  const dot = target.indexOf('.');
  return target.slice(0, dot) === source && (target.slice(dot + 1) === '*' || target.slice(dot + 1) === id);
}

/** A hub id as a subject token (as subjects.ts does for the hub's stats). */
export function inspectId(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}
