/** The XMPP namespaces the bridge speaks. */
export const NS = {
  muc: "http://jabber.org/protocol/muc",
  mucUser: "http://jabber.org/protocol/muc#user",
  stanzaId: "urn:xmpp:sid:0",
  delay: "urn:xmpp:delay",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
  correction: "urn:xmpp:message-correct:0",
  retract: "urn:xmpp:message-retract:1",
  fasten: "urn:xmpp:fasten:0",
  retractV0: "urn:xmpp:message-retract:0",
  reply: "urn:xmpp:reply:0",
  fallback: "urn:xmpp:fallback:0",
  hints: "urn:xmpp:hints",
  mam: "urn:xmpp:mam:2",
  forward: "urn:xmpp:forward:0",
  rsm: "http://jabber.org/protocol/rsm",
  dataForms: "jabber:x:data",
} as const;
