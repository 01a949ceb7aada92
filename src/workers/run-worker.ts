/**
 * The fleet's composition root moved to fleet.ts (the reaper to reaper.ts, cancellations to
 * cancellations.ts); this re-export keeps `run-worker.js` imports working.
 */
export { Fleet, type FleetOptions } from './fleet.js';
