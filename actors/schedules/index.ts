/**
 * @module schedules
 * Cron and interval schedules that submit a task at each slot, exactly once per slot across hub
 * restarts, failovers and several hubs (run by the hub holding the lease); their API endpoints.
 */
export { registerScheduleEndpoints } from './endpoints.js';
export { type SchedulesInput, type SchedulesMessage, SchedulesProcess } from './process.js';
export {
  cronProblem,
  nextSlots,
  planSlots,
  type SlotClock,
  type SlotPlan,
  slotAction,
  slotClock,
} from './slots.js';
export {
  createSchedule,
  getSchedule,
  listSchedules,
  openScheduleStore,
  pauseSchedule,
  removeSchedule,
  resumeSchedule,
  type ScheduleStore,
} from './store.js';
