/** The XMPP namespaces the bridge speaks. */
export const NS = {
  muc: "http://jabber.org/protocol/muc",
  mucUser: "http://jabber.org/protocol/muc#user",
  stanzaId: "urn:xmpp:sid:0",
  delay: "urn:xmpp:delay",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
} as const;
