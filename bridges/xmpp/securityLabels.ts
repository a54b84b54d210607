/**
 * Security labels (XEP-0258) as policy markings and back, through the label table in bridges.xmpp.labels.
 * The policy decides what a marking may reach; the bridge only translates, and refuses a label it cannot.
 */
import type { DeliveredMarking } from "../../schemas/types.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import type { XmppSecurityLabel } from "./config.types.js";
import { NS } from "./namespaces.js";
import { xml, type XmlElement } from "./XmppComponent.js";

/** How much of what the sender wrote in a label a refusal repeats: enough to recognise it. */
const SHOWN = 64;

function shown(text: string): string {
  return Array.from(text).slice(0, SHOWN).join("");
}

function refusal(what: string, label?: string): PermanentError {
  return new PermanentError("FG_NATIVE_INVALID", what, { detail: { label } });
}

/**
 * The marking a message's label stands for: undefined for an unlabelled message. Throws FG_NATIVE_INVALID for
 * a label the bridge cannot vouch for: one not in the table; an ESS label (the machine-readable one, which
 * decides) that the table does not list, or that the display marking beside it contradicts; a label in
 * another format; and more than one label, including equivalent labels, which the bridge cannot check.
 */
export function markingOf(stanza: XmlElement, labels: XmppSecurityLabel[]): string | undefined {
  const all = stanza.getChildren("securitylabel", NS.securityLabel);
  const label = all[0];
  if (label === undefined) return undefined;
  const displays = label.getChildren("displaymarking");
  const inner = label.getChildren("label");
  if (
    all.length > 1 ||
    displays.length > 1 ||
    inner.length > 1 ||
    label.getChild("equivalentlabel") !== undefined
  ) {
    throw refusal("a message may carry one security label; this one carries more");
  }
  const display = displays[0]?.text().trim() || undefined;
  const shownDisplay = display === undefined ? undefined : shown(display);
  const shows = (entry: XmppSecurityLabel): boolean =>
    display !== undefined && entry.displayMarking.toLowerCase() === display.toLowerCase();
  const parts = inner[0]?.children.filter((c): c is XmlElement => typeof c !== "string") ?? [];
  // A label element with nothing in it says no more than its display marking.
  if (parts.length === 0) {
    const entry = labels.find(shows);
    if (entry === undefined) {
      throw refusal(
        `security label "${shownDisplay ?? "(empty)"}" is not one fedgate may carry`,
        shownDisplay,
      );
    }
    return entry.marking;
  }
  const [essElement] = parts;
  if (parts.length > 1 || essElement?.is("esssecuritylabel", NS.essLabel) !== true) {
    throw refusal(
      `security label "${shownDisplay ?? "(no display marking)"}" is in a format fedgate does not read`,
      shownDisplay,
    );
  }
  const ess = shown(essElement.text().trim());
  const entry = labels.find((l) => l.ess !== undefined && l.ess === essElement.text().trim());
  if (entry === undefined) {
    throw refusal(`security label "${shownDisplay ?? ess}" (ESS ${ess}) is not one fedgate may carry`, ess);
  }
  if (display !== undefined && !shows(entry)) {
    throw refusal(
      `security label shows "${shown(display)}" but its ESS label is ${entry.displayMarking}`,
      shownDisplay,
    );
  }
  return entry.marking;
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
