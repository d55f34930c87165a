// The AgentCom dashboard (docs/gateway.md, "Dashboard"): one page served by the gateway with no
// external asset. Each panel is its own module; importing it registers its hooks on the core,
// then start() signs in with the stored token, if any.
import './hub.js';
import './queue.js';
import './agents.js';
import './tasks.js';
import './dead.js';
import './charts.js';
import './alerts.js';
import './task-detail.js';
import './tree.js';
import './diagram.js';
import './pheromones.js';
import './room.js';
import { start } from './core.js';

start();
