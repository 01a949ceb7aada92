export type { ApprovalEventSource, ApprovalFeedEvent } from './approval-feed.js';
export { ApprovalFeed } from './approval-feed.js';
export type {
  ApprovalServiceOptions,
  AuditEntry,
  AuditFilter,
  DecisionContext,
  HeldJob,
  HeldJobDetail,
  HoldStatus,
  RequestOutcome,
} from './approval-service.js';
export { ApprovalService } from './approval-service.js';
export { ApprovalStaleError, ApproverApiError } from './errors.js';
export type { CodeLineView, HeldDetailView, HeldSummaryView, WriteView } from './held-view.js';
export { heldDetail, heldSummary, numberLines, writesOf } from './held-view.js';
export type { ApproverClientOptions } from './http/client.js';
export { ApproverClient } from './http/client.js';
export type { ApprovalDesk, ApproverAppOptions, ReadPvs } from './http/routes.js';
export { buildApproverApp } from './http/routes.js';
export type { ApproverApi, ApproverApiOptions } from './http/server.js';
export { startApproverApi } from './http/server.js';
export type { PvReaderOptions, PvReading } from './pv-reader.js';
export { PvReader } from './pv-reader.js';
export type { ApproverIdentity, ApproverRole, ApproverTokenEntry } from './tokens.js';
export { createToken, hashToken, TokenAuthenticator } from './tokens.js';
