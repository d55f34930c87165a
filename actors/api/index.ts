/**
 * @module api
 * The hub's request/reply API (NATS micro service).
 */
export { type ApiInput, ApiProcess } from './process.js';
