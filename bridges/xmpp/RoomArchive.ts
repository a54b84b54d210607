/** A room's archive (XEP-0313), read a page at a time (XEP-0059) as the bot. */
import { randomUUID } from "node:crypto";
import { boundedId } from "./boundedId.js";
import { NS } from "./namespaces.js";
import { stanzaIdOf } from "./toNormalisedEvent.js";
import { xml, type XmlElement, type XmppComponent } from "./XmppComponent.js";

/** Archive page size when catching up (XEP-0313 with XEP-0059). */
const MAM_PAGE = 100;

/** A room's message as its archive returned it (XEP-0313). */
export interface ArchivedMessage {
  message: XmlElement;
  nick: string;
  /** The result's id: the message's stanza-id. */
  archiveId?: string;
  archivedJid?: string;
}

/** A page of a room's archive: its messages, and the result that ends it (`<fin/>`, XEP-0313). */
export interface ArchivePage {
  page: ArchivedMessage[];
  fin: XmlElement | undefined;
}

export class RoomArchive {
  /** The messages of each archive query in progress, by queryid. */
  private readonly queries = new Map<string, { room: string; page: ArchivedMessage[] }>();

  constructor(
    private readonly component: Pick<XmppComponent, "request">,
    private readonly botJid: string,
  ) {}

  /**
   * One page of a room's archive (XEP-0313), asked as the bot, with `position` the XEP-0059 element that
   * says where (`<after>id</after>`, `<before/>`...): its messages in the room's order, which arrive before
   * the result and answerIn collects, and the result's `<fin/>`. Rejects as the request does.
   */
  async page(room: string, position: XmlElement): Promise<ArchivePage> {
    const queryid = randomUUID();
    const page: ArchivedMessage[] = [];
    this.queries.set(queryid, { room, page });
    try {
      const result = await this.component.request(
        xml(
          "iq",
          { type: "set", to: room, from: this.botJid },
          xml(
            "query",
            { xmlns: NS.mam, queryid },
            xml("set", { xmlns: NS.rsm }, xml("max", {}, String(MAM_PAGE)), position),
          ),
        ),
      );
      return { page, fin: result.getChild("fin", NS.mam) };
    } finally {
      this.queries.delete(queryid);
    }
  }

  /**
   * Where `stanza` is the room's answer to a query in progress: the message it forwards, and `keep` to put
   * that message, its sender's nick read, on the query's page.
   */
  answerIn(stanza: XmlElement): { message: XmlElement; keep: (nick: string) => void } | undefined {
    const result = stanza.getChild("result", NS.mam);
    const query = this.queries.get(result?.attrs["queryid"] ?? "");
    // Only the room answers the bridge's archive query: a result an occupant wrote into a message is none.
    if (query === undefined || stanza.attrs["from"] !== query.room) return undefined;
    const message = result?.getChild("forwarded", NS.forward)?.getChild("message");
    if (message === undefined) return undefined;
    return {
      message,
      keep: (nick) => {
        // The result's id is the message's stanza-id.
        const archiveId = result?.attrs["id"];
        // An archive may name the sender's real JID (ejabberd does), though they have left since.
        const archivedJid = message.getChild("x", NS.mucUser)?.getChild("item")?.attrs["jid"];
        query.page.push({
          message,
          nick,
          ...(archiveId === undefined ? {} : { archiveId }),
          ...(archivedJid === undefined ? {} : { archivedJid }),
        });
      },
    };
  }
}

/** The stanza-id a room gave an archived message: in the message, else the archive's id for it. */
export function roomStanzaId(archived: ArchivedMessage, room: string): string | undefined {
  try {
    return stanzaIdOf(archived.message, room) ?? boundedId(archived.archiveId, "the archive's id");
  } catch {
    // Past the bound: the message is still found, without an id replies could use.
    return undefined;
  }
}
