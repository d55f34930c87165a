/**
 * @module schedules/endpoints
 * The `schedule.*` endpoints of the hub's API: create (or replace), list, get, pause, resume,
 * remove, and trigger (one task now, outside the slots). They write the schedules bucket; the
 * lease holder's SchedulesProcess follows it. A spec croner cannot read, or whose task the task
 * schema refuses, is refused here (`invalid_payload`), before anything is stored.
 */
import type { AgentcomService } from '../../src/bus/service.js';
import { EmptyRequestSchema } from '../../src/protocol/api.js';
import {
  ScheduleCreateRequestSchema,
  ScheduleListReplySchema,
  ScheduleRefSchema,
  ScheduleReplySchema,
  ScheduleTriggerReplySchema,
} from '../../src/protocol/schedule.js';
import { carryOut, type FireDeps } from './fire.js';
import { slotAction } from './slots.js';
import {
  createSchedule,
  getSchedule,
  listSchedules,
  pauseSchedule,
  removeSchedule,
  resumeSchedule,
  type ScheduleStore,
} from './store.js';

export function registerScheduleEndpoints(svc: AgentcomService, store: ScheduleStore, deps: FireDeps): void {
  const one = <T>(p: Promise<T>) => p.then((schedule) => ({ v: 1 as const, schedule }));
  svc.addEndpoint('schedule.create', {
    input: ScheduleCreateRequestSchema,
    output: ScheduleReplySchema,
    description: 'Store a schedule (conflict if the name exists, unless replace).',
    handler: ({ spec, replace }) => one(createSchedule(store, spec, { replace })),
  });
  svc.addEndpoint('schedule.list', {
    input: EmptyRequestSchema,
    output: ScheduleListReplySchema,
    description: 'Every schedule with its progress and next slots.',
    handler: async () => ({ v: 1 as const, schedules: await listSchedules(store) }),
  });
  svc.addEndpoint('schedule.get', {
    input: ScheduleRefSchema,
    output: ScheduleReplySchema,
    description: 'One schedule with its progress and next slots.',
    handler: ({ name }) => one(getSchedule(store, name)),
  });
  svc.addEndpoint('schedule.pause', {
    input: ScheduleRefSchema,
    output: ScheduleReplySchema,
    description: 'Stop firing (idempotent).',
    handler: ({ name }) => one(pauseSchedule(store, name)),
  });
  svc.addEndpoint('schedule.resume', {
    input: ScheduleRefSchema,
    output: ScheduleReplySchema,
    description: 'Fire again from the next slot; slots missed while paused are skipped (idempotent).',
    handler: ({ name }) => one(resumeSchedule(store, name)),
  });
  svc.addEndpoint('schedule.remove', {
    input: ScheduleRefSchema,
    description: 'Delete a schedule and its progress (tasks it submitted stay).',
    handler: async ({ name }) => {
      await removeSchedule(store, name);
      return { v: 1 as const, name };
    },
  });
  svc.addEndpoint('schedule.trigger', {
    input: ScheduleRefSchema,
    output: ScheduleTriggerReplySchema,
    description: 'Fire the schedule’s action now, once (the slots and the overlap policy are untouched).',
    handler: async ({ name }) => {
      const view = await getSchedule(store, name);
      const fired = await carryOut(slotAction(view, Date.now(), 'trigger'), deps);
      return 'lastTaskId' in fired
        ? { v: 1 as const, taskId: fired.lastTaskId }
        : { v: 1 as const, pheromoneId: fired.lastPheromoneId };
    },
  });
}
