/**
 * Stashcat says how many liked a message, not who: the likes are one reaction of one stable sender, added
 * when the first like comes and taken back when the last goes. A person per like would invent people (and a
 * ghost account or puppet for each, on every other network); a count in the reaction would make every
 * further like a new reaction on the other networks, and still name no one. The bridge's own like stands
 * for reactions from elsewhere (Deliveries.changeLike), so it is not counted: it would only come back as an
 * echo.
 */
import type { NormalisedEvent } from "../../schemas/types.js";
import type { AdapterRuntime } from "../kit/AdapterRuntime.js";
import { likesNowSeen, type LikesSeenStore } from "./LikesSeenStore.js";
import type { StashcatMessage } from "./messages.js";
import type { OwnActionStore } from "./OwnActionStore.js";

/** Likes are Stashcat's only reaction; every reaction from elsewhere becomes one. */
const LIKE = "👍";
/** Who "likes" on the other networks: Stashcat does not say who liked. */
const LIKES_SENDER = { userId: "likes", displayName: "Stashcat" };

export interface InboundLikesDeps {
  runtime: Pick<AdapterRuntime, "eventIdOf" | "publish">;
  ownActions: Pick<OwnActionStore, "liked">;
  likesSeen: Pick<LikesSeenStore, "seen" | "remember">;
}

export class InboundLikes {
  constructor(private readonly deps: InboundLikesDeps) {}

  /** Publishes the coming or going of the likes of the message, published as `eventId`, since last seen. */
  async publish(
    message: StashcatMessage,
    eventId: string,
    base: Pick<NormalisedEvent, "specVersion" | "source" | "timestamp">,
  ): Promise<void> {
    const { runtime, ownActions, likesSeen } = this.deps;
    const ownLike = message.liked ?? (await ownActions.liked(message.id));
    const likes = Math.max(0, message.likes - (ownLike ? 1 : 0));
    const seen = await likesSeen.seen(message.chat, message.id);
    const now = likesNowSeen(seen, likes);
    if (now.turns !== seen.turns) {
      // Each coming or going of the likes is an event of its own, the same however often it is read: the
      // count of turns is stored only after the publish, so a retry publishes the same id.
      await runtime.publish({
        ...base,
        id: runtime.eventIdOf(`likes ${String(message.id)} ${String(now.turns)}`),
        type: likes > 0 ? "reaction.added" : "reaction.removed",
        sender: LIKES_SENDER,
        content: { reaction: LIKE },
        relations: { reactsTo: eventId },
      });
    }
    if (now.likes !== seen.likes || now.turns !== seen.turns)
      await likesSeen.remember(message.chat, message.id, now);
  }
}
