/**
 * fedgate's presence in group chats (XEP-0045): the rooms its bot and puppets are in, each joined under a nick
 * no one else holds there, and the native occupants the bot sees come and go.
 */
import type { Logger } from "pino";
import { FedgateError, PermanentError } from "../../schemas/contract/errors.js";
import { bareJid, splitOccupant } from "./jids.js";
import { NS } from "./namespaces.js";
import { occupantIdOf } from "./toNormalisedEvent.js";
import { xml, type XmlElement, type XmppComponent } from "./XmppComponent.js";

/** How long to wait for a room to confirm a join. */
const JOIN_TIMEOUT_MS = 10_000;
/**
 * How many nicks a join tries that the room then says are taken. Nicks the bot sees occupants hold are passed
 * over without asking: a conflict means someone took the nick meanwhile, which does not happen by chance
 * again and again.
 */
const MAX_NICK_CONFLICTS = 5;

/** A native occupant: their real full JID where the room shows it, and their XEP-0421 id where it gives one. */
export interface Occupant {
  jid?: string;
  occupantId?: string;
}

interface Room {
  /** Native occupants by nick. */
  occupants: Map<string, Occupant>;
  /** fedgate's own occupants here (bot and puppets), by full JID: the nick and the join, done or in progress. */
  own: Map<string, { nick: string; joined: Promise<void> }>;
  /** Set once the bot's own join is confirmed: occupants the room lists before that were there already. */
  listening: boolean;
}

/** A native occupant who came into a room, or left it, while the bot was listening there. */
export type MembershipListener = (
  type: "member.joined" | "member.left",
  room: string,
  nick: string,
  occupant: Occupant,
) => void;

export class MucRooms {
  private readonly rooms = new Map<string, Room>();
  /** Joins waiting for the room's answer, by "<room> <full JID joining>". */
  private readonly pendingJoins = new Map<
    string,
    { resolve: (nick: string) => void; reject: (e: Error) => void }
  >();

  constructor(
    private readonly component: Pick<XmppComponent, "send">,
    private readonly botJid: string,
    private readonly log: Logger,
    private readonly onMembership: MembershipListener,
  ) {}

  /** Whether `fullJid` is in `roomJid`, or on its way in. */
  isIn(roomJid: string, fullJid: string): boolean {
    return this.rooms.get(roomJid)?.own.has(fullJid) === true;
  }

  /** Whether the bridge is in `roomJid` at all (or on its way in). */
  knows(roomJid: string): boolean {
    return this.rooms.has(roomJid);
  }

  /** The native occupant holding `nick` in a room, as the bot last saw them (nothing known: `{}`). */
  occupant(roomJid: string, nick: string): Occupant {
    return this.rooms.get(roomJid)?.occupants.get(nick) ?? {};
  }

  /** Whether a nick is one of fedgate's own occupants in a room. */
  isOwnNick(roomJid: string, nick: string): boolean {
    const room = this.rooms.get(roomJid);
    return room !== undefined && isOwnNick(room, nick);
  }

  /** The nick `fullJid` holds in a room ("" while its first try is underway), if it is there. */
  ownNick(roomJid: string, fullJid: string): string | undefined {
    return this.rooms.get(roomJid)?.own.get(fullJid)?.nick;
  }

  /** The rooms the bot's join was confirmed in, with its nick there: what a self-ping asks about. */
  botRooms(): { roomJid: string; nick: string }[] {
    return [...this.rooms].flatMap(([roomJid, room]) => {
      const nick = room.own.get(this.botJid)?.nick;
      return nick === undefined || nick === "" ? [] : [{ roomJid, nick }];
    });
  }

  /**
   * Forgets a room the bot is no longer in although nothing said so (a self-ping found it out): fedgate's
   * occupants leave it, quietly, and the room is joined again, and caught up, like after a reconnection.
   */
  async forgetRoom(roomJid: string): Promise<void> {
    const room = this.rooms.get(roomJid);
    if (room === undefined) return;
    this.rooms.delete(roomJid);
    await this.leaveQuietly(ownOccupants(roomJid, room));
  }

  private room(jid: string): Room {
    let room = this.rooms.get(jid);
    if (room === undefined) {
      room = { occupants: new Map(), own: new Map(), listening: false };
      this.rooms.set(jid, room);
    }
    return room;
  }

  /**
   * Joins `room` as `fullJid` under the first of `nicks` no one else holds there (a native occupant may have
   * taken a remote person's name); resolves when the room confirms. Joining twice is a no-op.
   */
  join(roomJid: string, fullJid: string, nicks: Iterable<string>): Promise<void> {
    const room = this.room(roomJid);
    const existing = room.own.get(fullJid);
    if (existing !== undefined) return existing.joined;
    const own = { nick: "", joined: Promise.resolve() };
    own.joined = this.enterUnderFreeNick(room, roomJid, fullJid, nicks, own);
    room.own.set(fullJid, own);
    own.joined.catch(() => {
      if (room.own.get(fullJid) === own) room.own.delete(fullJid);
    });
    return own.joined;
  }

  /**
   * Tries `nicks` in order until the room lets `fullJid` in, keeping the nick tried (then the one the room
   * confirmed) in `own`. A nick the bot sees an occupant hold is passed over; one the room says is taken
   * (someone came in meanwhile) is too, MAX_NICK_CONFLICTS times at most. Any other refusal throws.
   */
  private async enterUnderFreeNick(
    room: Room,
    roomJid: string,
    fullJid: string,
    nicks: Iterable<string>,
    own: { nick: string },
  ): Promise<void> {
    let conflicts = 0;
    for (const nick of nicks) {
      if (room.occupants.has(nick) || isOwnNick(room, nick)) continue;
      own.nick = nick;
      try {
        own.nick = await this.enter(roomJid, fullJid, nick);
        return;
      } catch (error) {
        const taken = error instanceof FedgateError && error.detail["condition"] === "conflict";
        if (!taken || ++conflicts >= MAX_NICK_CONFLICTS) throw error;
        this.log.info({ room: roomJid, nick }, "nick taken in the room; trying the next");
      }
    }
  }

  /**
   * Asks to enter `room` as `fullJid` under `nick`; resolves with the nick the room confirms (it may have
   * normalised it), rejects with the room's refusal, its condition in the detail.
   */
  private enter(roomJid: string, fullJid: string, nick: string): Promise<string> {
    const key = `${roomJid} ${fullJid}`;
    let pending!: { resolve: (nick: string) => void; reject: (e: Error) => void };
    const entered = new Promise<string>((resolve, reject) => {
      // Ends this join only: a later one under the same key (after a reconnection) keeps its entry.
      const settle = (): void => {
        clearTimeout(timer);
        if (this.pendingJoins.get(key) === pending) this.pendingJoins.delete(key);
      };
      pending = {
        resolve: (confirmed: string) => {
          settle();
          resolve(confirmed);
        },
        reject: (error: Error) => {
          settle();
          reject(error);
        },
      };
      const timer = setTimeout(
        () =>
          pending.reject(
            new PermanentError("FG_PEER_REFUSED", `room ${roomJid} did not confirm the join of ${nick}`),
          ),
        JOIN_TIMEOUT_MS,
      );
      this.pendingJoins.set(key, pending);
    });
    void this.component
      .send(
        xml(
          "presence",
          { from: fullJid, to: `${roomJid}/${nick}` },
          // No history: what was said before is not new, and catching up is MAM's job.
          xml("x", { xmlns: NS.muc }, xml("history", { maxstanzas: "0" })),
        ),
      )
      .catch((error: unknown) => pending.reject(error as Error));
    return entered;
  }

  onPresence(stanza: XmlElement): void {
    const [roomJid, nick] = splitOccupant(stanza.attrs["from"]);
    if (roomJid === undefined || nick === undefined) return;
    const to = stanza.attrs["to"] ?? "";
    // A join in progress is answered to the JID that asked: a refusal, or the room's word that this is us.
    const pending = this.pendingJoins.get(`${roomJid} ${to}`);
    if (stanza.attrs["type"] === "error") {
      const condition = stanza
        .getChild("error")
        ?.children.find((c): c is XmlElement => typeof c !== "string")?.name;
      pending?.reject(
        new PermanentError("FG_PEER_REFUSED", `room ${roomJid} refused ${nick}: ${condition ?? "error"}`, {
          detail: { condition },
        }),
      );
      return;
    }
    const available = stanza.attrs["type"] !== "unavailable";
    const self = isSelfPresence(stanza);
    if (available && self) pending?.resolve(nick);
    // Every own occupant (bot and puppets) gets each presence: the bot's copy alone tells who came and went.
    if (to !== this.botJid) return;
    const room = this.room(roomJid);
    if (self) {
      room.listening = available;
      return;
    }
    if (isOwnNick(room, nick)) return;
    const jid = stanza.getChild("x", NS.mucUser)?.getChild("item")?.attrs["jid"];
    let occupantId: string | undefined;
    try {
      occupantId = occupantIdOf(stanza);
    } catch (error) {
      // Not an occupant the bridge can tell apart from others: their messages are refused, and say why.
      this.log.warn({ err: error, room: roomJid, nick }, "occupant refused");
      room.occupants.delete(nick);
      return;
    }
    const occupant: Occupant = {
      ...(jid === undefined ? {} : { jid }),
      ...(occupantId === undefined ? {} : { occupantId }),
    };
    if (!available) {
      // A nick change (status 303) arrives as this leave and then a join under the new nick.
      if (room.listening && room.occupants.has(nick))
        this.onMembership("member.left", roomJid, nick, occupant);
      room.occupants.delete(nick);
      return;
    }
    if (room.listening && !room.occupants.has(nick))
      this.onMembership("member.joined", roomJid, nick, occupant);
    room.occupants.set(nick, occupant);
  }

  /** A puppet leaves a room, as the remote member it stands for left. */
  async leave(roomJid: string, fullJid: string): Promise<void> {
    const room = this.rooms.get(roomJid);
    const nick = room?.own.get(fullJid)?.nick;
    if (room === undefined || nick === undefined) return;
    room.own.delete(fullJid);
    await this.component.send(
      xml("presence", { type: "unavailable", from: fullJid, to: `${roomJid}/${nick}` }),
    );
  }

  /** Every own occupant (bot and puppets) leaves every room. */
  async leaveAll(): Promise<void> {
    await this.leaveQuietly([...this.rooms].flatMap(([roomJid, room]) => ownOccupants(roomJid, room)));
  }

  /**
   * After a reconnection: the rooms still hold the occupants of the lost stream (a server does not remove a
   * component's occupants when it goes), and a native occupant would seem to hold each of their nicks. They
   * leave, on the new stream, and every room is forgotten, to be joined again under the same nicks: what a
   * puppet posted before stays attributable to it (see postedBefore).
   */
  async forgetAfterReconnection(): Promise<void> {
    const lost = [...this.rooms].flatMap(([roomJid, room]) => ownOccupants(roomJid, room));
    this.rooms.clear();
    await this.leaveQuietly(lost);
  }

  /** Sends each occupant's leave; one that cannot be sent (the stream went again) is not tried again. */
  private async leaveQuietly(occupants: { roomJid: string; fullJid: string; nick: string }[]): Promise<void> {
    await Promise.all(
      occupants.map(({ roomJid, fullJid, nick }) =>
        this.component
          .send(xml("presence", { type: "unavailable", from: fullJid, to: `${roomJid}/${nick}` }))
          .catch(() => undefined),
      ),
    );
  }
}

function ownOccupants(roomJid: string, room: Room): { roomJid: string; fullJid: string; nick: string }[] {
  return [...room.own].map(([fullJid, { nick }]) => ({ roomJid, fullJid, nick }));
}

/**
 * Who an occupant is across nick changes: their real JID where the room shows it, else the room's stable
 * occupant-id (XEP-0421), else (rooms without it) their occupant JID.
 */
export function occupantSender(
  room: string,
  nick: string,
  occupant: Occupant,
): { userId: string; displayName: string } {
  const userId =
    occupant.jid === undefined
      ? occupant.occupantId === undefined
        ? `${room}/${nick}`
        : `${room}#${occupant.occupantId}`
      : bareJid(occupant.jid);
  return { userId, displayName: nick };
}

/** Whether a presence is the room's word about the recipient's own occupant (XEP-0045 status 110). */
function isSelfPresence(stanza: XmlElement): boolean {
  return (
    stanza
      .getChild("x", NS.mucUser)
      ?.getChildren("status")
      .some((status) => status.attrs["code"] === "110") === true
  );
}

/** Whether a nick is one of fedgate's own occupants: their messages come back and are not bridged. */
function isOwnNick(room: Room, nick: string): boolean {
  for (const own of room.own.values()) if (own.nick === nick) return true;
  return false;
}
