/**
 * One adapter instance's side of the links: the conversations it bridges. Every adapter needs "my linked
 * conversations" (to join, follow or catch up on them) and to hear when they change; changes to links with no
 * endpoint here are not its business, so they are not passed on.
 */
import type { Endpoint, Link } from "../../schemas/types.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";

/** A linked conversation of this instance, and the link it is part of. */
export interface LinkedConversation {
  link: Link;
  endpoint: Endpoint;
}

export class LinkedConversations {
  private readonly listeners = new Set<() => void>();
  /** What the listeners last heard of, to tell a change here from a change elsewhere. */
  private seen: string;

  constructor(
    private readonly links: LinkStore,
    private readonly network: string,
    private readonly instance: string,
  ) {
    this.seen = this.fingerprint();
    links.onChange(() => {
      const now = this.fingerprint();
      if (now === this.seen) return;
      this.seen = now;
      for (const listener of this.listeners) listener();
    });
  }

  /** This instance's linked conversations, as this process has seen the links so far. */
  list(): LinkedConversation[] {
    return this.links.endpointsOf(this.network, this.instance);
  }

  /** Calls `listener` after each change to this instance's linked conversations (added, changed or removed). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private fingerprint(): string {
    return JSON.stringify(this.list());
  }
}
