// The workspace's entry point: live updates on every page, then the page's own module.
import { initAgents } from "./agents.js";
import { startLive } from "./live.js";
import { initMissed } from "./missed.js";
import { initQueue } from "./queue.js";
import { initTicket } from "./ticket.js";

const PAGES = { queue: initQueue, ticket: initTicket, agents: initAgents, missed: initMissed };

startLive();
const init = PAGES[document.body.dataset.page];
if (init) init();
