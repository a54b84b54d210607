/** A room's echo of what a puppet sent: the only receipt a component gets, with the stanza-id the room gave. */
import { NS } from "./namespaces.js";
import { stanzaIdOf } from "./toNormalisedEvent.js";
import type { XmlElement } from "./XmppComponent.js";

/** How long to wait for the room to echo a message with the stanza-id it gave it. */
export const REFLECTION_TIMEOUT_MS = 5_000;

export class RoomEchoes {
  /** Messages a puppet sent, by "<room> <id>", waiting for the room's echo and its stanza-id. */
  private readonly pending = new Map<string, (stanzaId: string | undefined) => void>();

  /** Waits for `room` to echo the message with origin-id `id`: undefined when none came in time. */
  expect(room: string, id: string): Promise<{ stanzaId: string | undefined } | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), REFLECTION_TIMEOUT_MS);
      this.pending.set(`${room} ${id}`, (stanzaId) => {
        clearTimeout(timer);
        resolve({ stanzaId });
      });
    });
  }

  /** Stops waiting for the echo of the message with origin-id `id` in `room`. */
  forget(room: string, id: string): void {
    this.pending.delete(`${room} ${id}`);
  }

  /** A room's copy of a message, sent to one of fedgate's puppets: the echo of what it sent, if awaited. */
  heard(stanza: XmlElement, roomJid: string): void {
    const echo = this.pending.get(
      `${roomJid} ${stanza.getChild("origin-id", NS.stanzaId)?.attrs["id"] ?? ""}`,
    );
    echo?.(stanzaIdOf(stanza, roomJid));
  }
}
