/**
 * The console's log-in sessions, held in memory on the replica that made them: a random id (the cookie), the
 * token's scope, a per-session form token against cross-site requests, and an end. Bounded: the oldest
 * session is dropped when the table is full, and none outlives its lifetime.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { AdminScope } from "../adminScope.js";

export interface ConsoleSession {
  id: string;
  scope: AdminScope;
  /** Every form of the session carries it; a POST without it is refused. */
  csrfToken: string;
  expiresAt: number;
}

export const SESSION_LIFETIME_MS = 8 * 60 * 60 * 1000;
export const MAX_SESSIONS = 1000;

function randomId(): string {
  return randomBytes(32).toString("base64url");
}

export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();

  constructor(
    private readonly lifetimeMs = SESSION_LIFETIME_MS,
    private readonly max = MAX_SESSIONS,
    private readonly now: () => number = Date.now,
  ) {}

  create(scope: AdminScope): ConsoleSession {
    this.sweep();
    while (this.sessions.size >= this.max) this.sessions.delete(this.sessions.keys().next().value as string);
    const session = { id: randomId(), scope, csrfToken: randomId(), expiresAt: this.now() + this.lifetimeMs };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session of a cookie value, if any. */
  get(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (session === undefined) return undefined;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id);
  }
}

/** Whether a form's token is the session's, compared in constant time. */
export function csrfMatches(session: ConsoleSession, presented: unknown): boolean {
  if (typeof presented !== "string") return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(session.csrfToken);
  return a.length === b.length && timingSafeEqual(a, b);
}
