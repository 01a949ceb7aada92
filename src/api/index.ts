export { EventHub } from './event-hub.js';
export type { ProducerAppOptions } from './producer-routes.js';
export { buildProducerApp } from './producer-routes.js';
export type { ProducerApi, ProducerApiOptions } from './producer-server.js';
export { startProducerApi } from './producer-server.js';
