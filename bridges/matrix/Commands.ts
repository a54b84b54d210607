/**
 * The bot's commands in a room: room moderators link it to a link with a join code their fedgate
 * administrator issued, or unlink it; anything else is answered with help.
 */
import type { Link } from "../../schemas/types.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { JoinCodeStore } from "../../gateway/platform/stores/JoinCodeStore.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import type { BotNotices } from "./BotNotices.js";
import type { MatrixClient } from "./MatrixClient.js";
import { EventType, type MatrixEvent } from "./matrixEvents.js";
import type { MatrixInstance } from "./matrixInstance.js";
import { roomPowerOf } from "./roomPower.js";
import type { RoomGuard } from "./RoomGuard.js";

/** Power level a room member needs to link or unlink the room by a bot command (a room moderator). */
const LINKING_POWER = 50;
const COMMAND = "!fedgate";

const LINK_USAGE = "`!fedgate link <join code>`";

export const HELP = `fedgate bridges this room to other agencies' messengers. Room moderators: ${LINK_USAGE} joins this room to a link, with a one-time code from your fedgate administrator; \`!fedgate unlink\` takes it out.`;

export function isCommand(event: MatrixEvent): boolean {
  const body = event.content["body"];
  return (
    event.type === EventType.message &&
    typeof body === "string" &&
    (body === COMMAND || body.startsWith(`${COMMAND} `))
  );
}

export interface CommandsDeps {
  self: MatrixInstance;
  client: Pick<MatrixClient, "getState" | "getStateEvent">;
  links: Pick<LinkStore, "addEndpoint" | "removeEndpoint">;
  joinCodes: Pick<JoinCodeStore, "redeem">;
  guard: Pick<RoomGuard, "outsiderRefusal" | "refusalOf" | "checked" | "forget">;
  notices: Pick<BotNotices, "say">;
  log: Logger;
}

export class Commands {
  constructor(private readonly deps: CommandsDeps) {}

  async onCommand(event: MatrixEvent): Promise<void> {
    const { self, client, links, guard, notices, log } = this.deps;
    const room = event.room_id;
    const [, verb, argument] = (event.content["body"] as string).trim().split(/\s+/);
    if (verb !== "link" && verb !== "unlink") {
      await notices.say(room, HELP, { inReplyTo: event.event_id });
      return;
    }
    const outsider = guard.outsiderRefusal(event.sender);
    if (outsider !== undefined) {
      log.warn({ room, by: event.sender }, "bot command of a user of another server refused");
      await notices.say(room, `Not done: ${outsider}.`, { inReplyTo: event.event_id });
      return;
    }
    const { power } = await roomPowerOf(client, room, event.sender);
    if (power < LINKING_POWER) {
      await notices.say(
        room,
        `Only room moderators (power level ${String(LINKING_POWER)} or more) may ${verb} this room.`,
        { inReplyTo: event.event_id },
      );
      return;
    }
    try {
      if (verb === "unlink") {
        const remaining = await links.removeEndpoint(self.ref(room));
        guard.forget(room);
        log.info({ room, by: event.sender }, "room unlinked by a bot command");
        await notices.say(room, remaining === undefined ? "Unlinked; the link is gone." : "Unlinked.", {
          inReplyTo: event.event_id,
        });
        return;
      }
      if (argument === undefined) {
        await notices.say(room, `Give the join code your fedgate administrator issued: ${LINK_USAGE}`, {
          inReplyTo: event.event_id,
        });
        return;
      }
      const refusal = await guard.refusalOf(room);
      if (refusal !== undefined) {
        await notices.say(room, `fedgate will not bridge this room: ${refusal}.`, {
          inReplyTo: event.event_id,
        });
        return;
      }
      const link = await this.linkWithCode(event, argument);
      await notices.say(
        room,
        `Linked to ${link.id}${link.description === undefined ? "" : `: ${link.description}`}.`,
      );
    } catch (error) {
      if (
        !(error instanceof PermanentError) ||
        !(error.code.startsWith("FG_LINK_") || error.code === "FG_JOIN_CODE_INVALID")
      )
        throw error;
      log.warn({ err: error, room, by: event.sender }, `bot command "${verb}" refused`);
      await notices.say(room, `Not done: ${error.message}.`, { inReplyTo: event.event_id });
    }
  }

  /**
   * Joins the room to the link a join code grants, owned by the agency the code names. The code is the
   * authority: power in a room proves nothing about a link, as anyone can create a room. Audit-logged.
   */
  private async linkWithCode(event: MatrixEvent, code: string): Promise<Link> {
    const { self, links, joinCodes, guard, log } = this.deps;
    const room = event.room_id;
    return joinCodes.redeem(code, self.ref(room), async (grant) => {
      const link = await links.addEndpoint(grant.linkId, {
        ...self.ref(room),
        agency: grant.agency,
        kind: "room",
      });
      guard.checked(room, undefined);
      log.info(
        { room, link: link.id, agency: grant.agency, codeId: grant.codeId, by: event.sender },
        "room linked with a join code",
      );
      return link;
    });
  }
}
