/**
 * Security labels (XEP-0258) as policy markings and back, through the label table in bridges.xmpp.labels.
 * The policy decides what a marking may reach; the bridge only translates, and refuses a label it cannot.
 */
import type { DeliveredMarking } from "../../schemas/types.js";
import { PermanentError } from "../../gateway/errors.js";
import type { XmppSecurityLabel } from "./config.types.js";
import { NS } from "./namespaces.js";
import { xml, type XmlElement } from "./XmppComponent.js";

/** The marking a message's label stands for: undefined for an unlabelled message. Throws for an unknown label. */
export function markingOf(stanza: XmlElement, labels: XmppSecurityLabel[]): string | undefined {
  const label = stanza.getChild("securitylabel", NS.securityLabel);
  if (label === undefined) return undefined;
  const ess = label.getChild("label")?.getChildText("esssecuritylabel", NS.essLabel)?.trim();
  const display = label.getChildText("displaymarking")?.trim();
  const found =
    (ess === undefined || ess === "" ? undefined : labels.find((l) => l.ess === ess)) ??
    labels.find((l) => display !== undefined && l.displayMarking.toLowerCase() === display.toLowerCase());
  if (found === undefined) {
    throw new PermanentError(
      "FG_NATIVE_INVALID",
      `security label "${display ?? ess ?? "(empty)"}" is not one fedgate may carry`,
      { detail: { label: display ?? ess } },
    );
  }
  return found.marking;
}

/** The label to send with a delivery's marking, as the table writes it, or as the policy labels it. */
export function labelFor(
  marking: DeliveredMarking | undefined,
  labels: XmppSecurityLabel[],
): XmlElement | undefined {
  if (marking === undefined) return undefined;
  const entry = labels.find((l) => l.marking === marking.id);
  return xml(
    "securitylabel",
    { xmlns: NS.securityLabel },
    xml(
      "displaymarking",
      { fgcolor: entry?.fgcolor, bgcolor: entry?.bgcolor },
      entry?.displayMarking ?? marking.label,
    ),
    entry?.ess === undefined
      ? undefined
      : xml("label", {}, xml("esssecuritylabel", { xmlns: NS.essLabel }, entry.ess)),
  );
}
