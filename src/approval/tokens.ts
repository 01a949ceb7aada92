import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** viewer and approver use the approver API; producer the producer API (src/api/). */
export type ApproverRole = 'viewer' | 'approver' | 'producer';

/** A configured bearer token (`pyexec.approver.tokens`): only its sha256 is ever stored. */
export interface ApproverTokenEntry {
  readonly name: string;
  readonly token_sha256: string;
  readonly role: ApproverRole;
}

/** Who a request is, once its bearer token checked out. */
export interface ApproverIdentity {
  readonly name: string;
  readonly role: ApproverRole;
}

/** What each role may do in the approver API: viewers read, approvers read and decide, producers neither. */
export const CAN: Record<ApproverRole, { readonly read: boolean; readonly decide: boolean }> = {
  viewer: { read: true, decide: false },
  approver: { read: true, decide: true },
  producer: { read: false, decide: false },
};

/**
 * What each role may do in the producer API: producers submit, follow and cancel their own
 * requests; viewers and approvers read every request (and cannot submit or cancel).
 */
export const PRODUCER_CAN: Record<ApproverRole, { readonly submit: boolean; readonly readAll: boolean }> = {
  producer: { submit: true, readAll: false },
  viewer: { submit: false, readAll: true },
  approver: { submit: false, readAll: true },
};

/** sha256 hex of a token, as `token_sha256` in the config holds it. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A fresh random token (256 bits, base64url) and the config entry that admits it. */
export function createToken(name: string, role: ApproverRole): { token: string; entry: ApproverTokenEntry } {
  const token = `${role === 'producer' ? 'pxp' : 'pxa'}_${randomBytes(32).toString('base64url')}`;
  return { token, entry: { name, role, token_sha256: hashToken(token) } };
}

/**
 * Checks bearer tokens against the configured hashes. Every entry is compared in constant time
 * (no early exit), so the answer's timing does not tell how close a guess was.
 */
export class TokenAuthenticator {
  private readonly entries: ReadonlyArray<{ digest: Buffer; identity: ApproverIdentity }>;

  constructor(entries: readonly ApproverTokenEntry[]) {
    this.entries = entries.map((e) => ({
      digest: Buffer.from(e.token_sha256, 'hex'),
      identity: { name: e.name, role: e.role },
    }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The identity of an `Authorization` header value, or null for a missing, malformed or unknown token. */
  authenticate(header: string | undefined): ApproverIdentity | null {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
    if (!match) return null;
    const digest = Buffer.from(hashToken(match[1]!), 'hex');
    let found: ApproverIdentity | null = null;
    for (const e of this.entries) {
      if (e.digest.length === digest.length && timingSafeEqual(e.digest, digest) && !found) found = e.identity;
    }
    return found;
  }
}
