/** Telling a native sender, with a stanza error their client shows, that their message was not bridged. */
import type { Logger } from "pino";
import { FedgateError, TransientError } from "../../schemas/contract/errors.js";
import type { NotStoredError } from "../kit/untilStored.js";
import { NS } from "./namespaces.js";
import { xml, type XmlElement, type XmppComponent } from "./XmppComponent.js";

/** Where a refusal of a native message goes: from the JID they wrote to (or the bot), to the sender. */
export interface Refusal {
  from: string;
  to: string;
}

export class Refusals {
  constructor(
    private readonly component: Pick<XmppComponent, "send">,
    private readonly log: Logger,
  ) {}

  /**
   * Tells a sender, with a stanza error their client shows, that their message was not bridged and why.
   * The error names the stanza's id and comes from the JID they wrote to where the bridge owns it (a puppet),
   * else from the bot. An error to a bare JID is dropped by the server: it goes to the sender's session, or
   * to their occupant in a room that hides real JIDs.
   */
  async refuse(refusal: Refusal, id: string | undefined, error: Error): Promise<void> {
    await this.component.send(refusalStanza(refusal, id, error));
  }

  /**
   * Logs why a native message was not bridged and tells its sender: refused for good (their input), or not
   * now (a server or the bus unavailable: they may send it again).
   */
  async refuseOnce(stanza: XmlElement, refusal: Refusal, error: unknown): Promise<void> {
    if (!(error instanceof FedgateError)) {
      this.log.error({ err: error, from: stanza.attrs["from"] }, "cannot bridge a message");
      return;
    }
    if (error.transient) this.log.error({ err: error, from: stanza.attrs["from"] }, "message not bridged");
    else this.log.warn({ err: error, from: stanza.attrs["from"] }, "message refused");
    await this.refuse(refusal, stanza.attrs["id"], error).catch((cause: unknown) =>
      this.log.warn({ err: cause }, "cannot tell the sender their message was not bridged"),
    );
  }
}

/** The stanza error that refuses the message `id`: its condition the error's, else one its kind implies. */
function refusalStanza(refusal: Refusal, id: string | undefined, error: Error): XmlElement {
  const transient = error instanceof FedgateError && error.transient;
  const condition =
    error instanceof FedgateError && typeof error.detail["condition"] === "string"
      ? error.detail["condition"]
      : transient
        ? "resource-constraint"
        : "policy-violation";
  return xml(
    "message",
    { type: "error", from: refusal.from, to: refusal.to, id },
    xml(
      "error",
      // "wait": sending it again later may work.
      { type: transient ? "wait" : "cancel" },
      xml(condition, { xmlns: NS.stanzas }),
      xml("text", { xmlns: NS.stanzas }, `Not bridged: ${error.message}`),
    ),
  );
}

/**
 * What a sender is told of a message the bus did not confirm in time, without the bus's inner workings (the
 * cause keeps them for the log). "May": the bus client can still hand on an attempt it held while cut off.
 */
export function notTakenInTime(error: NotStoredError): TransientError {
  return new TransientError(
    error.code,
    "the gateway did not confirm it in time, so it may not have arrived; send it again",
    { cause: error },
  );
}
