export { EventHub } from './event-hub.js';
export type { ProducerApi, ProducerApiOptions } from './producer-api.js';
export { startProducerApi } from './producer-api.js';
export type { ProducerAppOptions } from './producer-app.js';
export { buildProducerApp } from './producer-app.js';
