/** Native users as events name them: their display name and, where they have one, their picture. */
import type { EventSender } from "../../schemas/types.js";
import { BoundedMap } from "../kit/BoundedMap.js";
import { CACHE_SIZE } from "./cacheSize.js";
import { localpartOf } from "./ghosts.js";
import type { MatrixClient, MatrixProfile } from "./MatrixClient.js";
import { EventType, type MatrixEvent } from "./matrixEvents.js";
import type { MediaLinks } from "./MediaLinks.js";

/** A native user as the bridge remembers them: the name events give, and their picture's mxc URI. */
interface NativeProfile {
  displayName: string;
  avatarMxc?: string;
}

export class NativeUsers {
  /** Native users as events name them: display name and picture (its mxc URI). */
  private readonly natives = new BoundedMap<string, NativeProfile>(CACHE_SIZE);

  constructor(
    private readonly client: Pick<MatrixClient, "getProfile">,
    private readonly media: Pick<MediaLinks, "link">,
  ) {}

  /**
   * A native user as an event names them: their display name (else their localpart) and, where they have
   * one, a link to their picture that the bridge serves. A join carries both; otherwise the homeserver is
   * asked once.
   */
  async senderOf(event: MatrixEvent, userId: string): Promise<EventSender> {
    let known = this.natives.get(userId);
    // A join names the member as they are now (a join after a join is a new name or picture).
    if (
      event.type === EventType.member &&
      event.state_key === userId &&
      event.content["membership"] === "join"
    ) {
      known = profileFrom(userId, event.content);
      this.natives.set(userId, known);
    }
    if (known === undefined) {
      // A name is a courtesy: without one, the localpart does.
      const profile = await this.client.getProfile(userId).catch((): MatrixProfile => ({}));
      known = profileFrom(userId, profile);
      this.natives.set(userId, known);
    }
    // The picture's link is made for each event: one kept since an earlier event may have expired.
    const { displayName, avatarMxc } = known;
    return {
      userId,
      displayName,
      ...(avatarMxc === undefined ? {} : { avatarUrl: this.media.link(avatarMxc, "avatar") }),
    };
  }
}

function profileFrom(
  userId: string,
  profile: { displayname?: unknown; avatar_url?: unknown },
): NativeProfile {
  const { displayname: name, avatar_url: avatar } = profile;
  const displayName = typeof name === "string" && name.trim() !== "" ? name : localpartOf(userId);
  if (typeof avatar !== "string" || !avatar.startsWith("mxc://")) return { displayName };
  return { displayName, avatarMxc: avatar };
}
