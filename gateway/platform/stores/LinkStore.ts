/**
 * Links in the fedgate_links bucket, mirrored in memory on every replica so that routing an event
 * costs one Map lookup, however many links exist.
 *
 * Keys: `link.<id>` holds the Link; `endpoint.<token>` claims one conversation for one link, written
 * with create() so two links can never claim the same conversation, even from two replicas at once.
 *
 * A direct chat's link is two people's alone: exactly two `direct` endpoints under a `dm-` id (see
 * directLinkId, computable by anyone from two public user ids), and it never takes another conversation.
 * This store enforces that for every caller.
 */
import type { Endpoint, Link } from "../../../schemas/types.js";
import { validateLink } from "../../../schemas/contract/schemas.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { FEDERATION_NETWORK } from "../../../schemas/contract/subjects.js";
import {
  decodeJson,
  encodeJson,
  KeyExistsError,
  keyToken,
  type KeyValueStore,
  type KvWatch,
} from "../bus/KeyValueStore.js";

/** The three coordinates that name a conversation anywhere. */
export interface ConversationRef {
  network: string;
  instance: string;
  conversation: string;
}

export function conversationKey(ref: ConversationRef): string {
  return `${ref.network}/${ref.instance}/${ref.conversation}`;
}

/** The conversation a conversationKey names (network and instance are tokens: they hold no "/"). */
export function parseConversationKey(key: string): ConversationRef | undefined {
  const first = key.indexOf("/");
  const second = key.indexOf("/", first + 1);
  if (first <= 0 || second <= first + 1) return undefined;
  return {
    network: key.slice(0, first),
    instance: key.slice(first + 1, second),
    conversation: key.slice(second + 1),
  };
}

/** The id prefix of direct chats' links (directLinkId); no other link may use it. */
const directLinkPrefix = "dm-";

/** Whether a link is a direct chat between two people: by its id, or by any of its endpoints. */
export function isDirectLink(link: Link): boolean {
  return link.id.startsWith(directLinkPrefix) || link.endpoints.some((e) => e.kind === "direct");
}

/** FG_LINK_INVALID unless a direct link is exactly two direct endpoints under a dm- id. */
function checkDirectShape(link: Link): void {
  if (!isDirectLink(link)) return;
  if (
    link.id.startsWith(directLinkPrefix) &&
    link.endpoints.length === 2 &&
    link.endpoints.every((e) => e.kind === "direct")
  )
    return;
  throw new PermanentError(
    "FG_LINK_INVALID",
    `link ${link.id}: a direct chat's link is exactly two direct endpoints under an id starting with ${directLinkPrefix}, and no other link has either`,
  );
}

/**
 * A link ordered by a partner gateway shares the conversation with that partner alone: the hub relays it to
 * any other gateway, so that everyone follows one order.
 */
function checkOrderedBy(link: Link): void {
  if (link.orderedBy === undefined) return;
  const federated = link.endpoints.filter((e) => e.network === FEDERATION_NETWORK);
  if (federated.length === 1 && federated[0]?.instance === link.orderedBy) return;
  throw new PermanentError(
    "FG_LINK_INVALID",
    `link ${link.id} is ordered by gateway ${link.orderedBy}, so its one federation endpoint must be that gateway's (it has ${federated.map((e) => e.instance).join(", ") || "none"})`,
  );
}

export interface LinkMatch {
  link: Link;
  /** The endpoint of the link that matched. */
  endpoint: Endpoint;
  /** Every other endpoint of the link. */
  others: Endpoint[];
}

export class LinkStore {
  private readonly byId = new Map<string, Link>();
  private readonly byConversation = new Map<string, LinkMatch>();
  private watcher: KvWatch | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly kv: KeyValueStore) {}

  /** Called after any link is added or removed, on this replica or another. */
  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  /** Loads every link and follows changes; resolves once the index is complete. */
  async start(): Promise<void> {
    this.watcher = await this.kv.watch((entry) => {
      if (!entry.key.startsWith("link.")) return;
      const id = entry.key.slice("link.".length);
      this.unindex(id);
      if (entry.operation === "PUT") this.index(decodeJson(entry.value) as Link);
      for (const listener of this.listeners) listener();
    });
  }

  stop(): void {
    this.watcher?.stop();
  }

  get(id: string): Link | undefined {
    return this.byId.get(id);
  }

  list(): Link[] {
    return [...this.byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Every conversation of one network instance in a link, with that link: an adapter's linked conversations. */
  endpointsOf(network: string, instance: string): { link: Link; endpoint: Endpoint }[] {
    return this.list().flatMap((link) =>
      link.endpoints
        .filter((e) => e.network === network && e.instance === instance)
        .map((endpoint) => ({ link, endpoint })),
    );
  }

  /** The link a conversation belongs to, if any, as this replica has seen it so far. O(1). */
  match(ref: ConversationRef): LinkMatch | undefined {
    return this.byConversation.get(conversationKey(ref));
  }

  /**
   * The link a conversation belongs to, asking the store when the mirror has none: a link another process
   * created a moment ago (a direct chat opened by a bridge) may reach the store before its watch update
   * reaches this replica, and the first message must not be refused for that.
   */
  async resolve(ref: ConversationRef): Promise<LinkMatch | undefined> {
    const known = this.match(ref);
    if (known !== undefined) return known;
    const claim = await this.kv.get(`endpoint.${keyToken(conversationKey(ref))}`);
    if (claim === undefined) return undefined;
    const entry = await this.kv.get(`link.${decodeJson(claim.value) as string}`);
    if (entry === undefined) return undefined;
    this.index(decodeJson(entry.value) as Link);
    return this.match(ref);
  }

  /**
   * Stores a new link. Throws FG_LINK_INVALID for a malformed link or one that names a conversation twice,
   * FG_LINK_CONFLICT when the id or a conversation is taken already.
   */
  async create(input: unknown): Promise<Link> {
    const link = validateLink(input);
    checkDirectShape(link);
    checkOrderedBy(link);
    const keys = link.endpoints.map((e) => `endpoint.${keyToken(conversationKey(e))}`);
    if (new Set(keys).size !== keys.length) {
      throw new PermanentError("FG_LINK_INVALID", `link ${link.id} names the same conversation twice`);
    }
    const stored: Link = { ...link, createdAt: link.createdAt ?? new Date().toISOString() };
    const claimed: string[] = [];
    try {
      for (const key of keys) {
        await this.kv.create(key, encodeJson(link.id));
        claimed.push(key);
      }
      await this.kv.create(`link.${link.id}`, encodeJson(stored));
    } catch (error) {
      await Promise.all(claimed.map((key) => this.kv.delete(key)));
      if (error instanceof KeyExistsError) {
        const what = error.key.startsWith("link.")
          ? `a link with id ${link.id} exists already`
          : `conversation ${conversationKey(link.endpoints[keys.indexOf(error.key)] ?? link.endpoints[0])} belongs to another link`;
        throw new PermanentError("FG_LINK_CONFLICT", what, { cause: error });
      }
      throw error;
    }
    this.index(stored);
    return stored;
  }

  /**
   * Adds a conversation to an existing link (an agency joining its room to a conversation set up by
   * another). The conversation is claimed first, as create() does, so it cannot end up in two links; the
   * link itself is updated against its revision, so two concurrent changes cannot undo each other.
   * Throws FG_LINK_NOT_FOUND, FG_LINK_CONFLICT (also for a direct chat's link, which takes no other
   * conversation), or FG_LINK_INVALID (also for a direct endpoint, which only its own direct link has).
   */
  async addEndpoint(id: string, endpoint: Endpoint): Promise<Link> {
    if (endpoint.kind === "direct")
      throw new PermanentError(
        "FG_LINK_INVALID",
        `a direct endpoint cannot join link ${id}: only the direct chat's own link has it`,
      );
    const claim = `endpoint.${keyToken(conversationKey(endpoint))}`;
    try {
      await this.kv.create(claim, encodeJson(id));
    } catch (error) {
      if (!(error instanceof KeyExistsError)) throw error;
      throw new PermanentError(
        "FG_LINK_CONFLICT",
        `conversation ${conversationKey(endpoint)} belongs to a link already`,
        { cause: error },
      );
    }
    try {
      return await this.change(id, (link) => {
        if (isDirectLink(link))
          throw new PermanentError(
            "FG_LINK_CONFLICT",
            `link ${id} is a direct chat between two people; it takes no other conversation`,
          );
        const joined: Link = { ...link, endpoints: [...link.endpoints, endpoint] };
        checkOrderedBy(joined);
        return joined;
      });
    } catch (error) {
      await this.kv.delete(claim);
      throw error;
    }
  }

  /**
   * Takes a conversation out of its link; a link that would be left with one conversation is removed.
   * Resolves with the link as it remains, or undefined when it was removed. Throws FG_LINK_NOT_FOUND.
   */
  async removeEndpoint(ref: ConversationRef): Promise<Link | undefined> {
    const claim = `endpoint.${keyToken(conversationKey(ref))}`;
    const entry = await this.kv.get(claim);
    if (entry === undefined)
      throw new PermanentError("FG_LINK_NOT_FOUND", `${conversationKey(ref)} belongs to no link`);
    const id = decodeJson(entry.value) as string;
    const key = conversationKey(ref);
    if ((this.get(id) ?? (await this.resolve(ref))?.link)?.endpoints.length === 2) {
      await this.delete(id);
      return undefined;
    }
    const changed = await this.change(id, (link) => ({
      ...link,
      // validateLink in change() refuses a link left with fewer than two.
      endpoints: link.endpoints.filter((e) => conversationKey(e) !== key) as Link["endpoints"],
    }));
    await this.kv.delete(claim);
    return changed;
  }

  /** Pauses a link (the core then delivers none of its events) or makes it active again. Throws FG_LINK_NOT_FOUND. */
  async setState(id: string, state: "active" | "paused"): Promise<Link> {
    return await this.change(id, (link) => ({ ...link, state }));
  }

  /** Rewrites a stored link against its revision, retrying when another writer came first. */
  private async change(id: string, edit: (link: Link) => Link): Promise<Link> {
    for (;;) {
      const entry = await this.kv.get(`link.${id}`);
      if (entry === undefined) throw new PermanentError("FG_LINK_NOT_FOUND", `no link with id ${id}`);
      const changed = validateLink(edit(decodeJson(entry.value) as Link));
      try {
        await this.kv.update(`link.${id}`, encodeJson(changed), entry.revision);
      } catch (error) {
        if (error instanceof KeyExistsError) continue;
        throw error;
      }
      this.unindex(id);
      this.index(changed);
      return changed;
    }
  }

  /** Removes a link and frees its conversations. Throws FG_LINK_NOT_FOUND. */
  async delete(id: string): Promise<void> {
    const entry = await this.kv.get(`link.${id}`);
    if (entry === undefined) throw new PermanentError("FG_LINK_NOT_FOUND", `no link with id ${id}`);
    const link = decodeJson(entry.value) as Link;
    await this.kv.delete(`link.${id}`);
    await Promise.all(link.endpoints.map((e) => this.kv.delete(`endpoint.${keyToken(conversationKey(e))}`)));
    this.unindex(id);
  }

  private index(link: Link): void {
    this.byId.set(link.id, link);
    for (const endpoint of link.endpoints) {
      const others = link.endpoints.filter((e) => e !== endpoint);
      this.byConversation.set(conversationKey(endpoint), { link, endpoint, others });
    }
  }

  private unindex(id: string): void {
    const link = this.byId.get(id);
    if (link === undefined) return;
    this.byId.delete(id);
    for (const endpoint of link.endpoints) this.byConversation.delete(conversationKey(endpoint));
  }
}
