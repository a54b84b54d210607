import type { AdapterRuntime } from "../kit/AdapterRuntime.js";
import { bareJid } from "./jids.js";
import { NS } from "./namespaces.js";
import { xml, type XmlElement } from "./XmppComponent.js";

/** XEP-0054: a puppet's vCard says who it stands for: their name, and their agency as organisation. */
export async function vcardOf(
  identities: AdapterRuntime["identities"],
  instance: string,
  iq: XmlElement,
): Promise<XmlElement> {
  const puppet = bareJid(iq.attrs["to"] ?? "");
  const remote = await identities.remoteFor({ network: "xmpp", instance, userId: puppet });
  if (remote === undefined)
    return xml("error", { type: "cancel" }, xml("item-not-found", { xmlns: NS.stanzas }));
  const name = remote.displayName ?? remote.userId;
  const agency = remote.agencyName ?? remote.agency;
  return xml(
    "vCard",
    { xmlns: NS.vcard },
    xml("FN", {}, name),
    xml("NICKNAME", {}, agency === undefined ? name : `${name} (${agency})`),
    agency === undefined ? undefined : xml("ORG", {}, xml("ORGNAME", {}, agency)),
  );
}
