/**
 * The XML namespaces of the XMPP extensions the bridge's tests speak. Written out here rather than taken from
 * the bridge, so that a wrong namespace there fails the tests instead of agreeing with them.
 */
export const NS = {
  muc: "http://jabber.org/protocol/muc",
  mucUser: "http://jabber.org/protocol/muc#user",
  chatstates: "http://jabber.org/protocol/chatstates",
  nick: "http://jabber.org/protocol/nick",
  vcard: "vcard-temp",
  oob: "jabber:x:oob",
  upload: "urn:xmpp:http:upload:0",
  sid: "urn:xmpp:sid:0",
  correction: "urn:xmpp:message-correct:0",
  retract: "urn:xmpp:message-retract:1",
  /** XEP-0424 0.2, carried in a fastening (XEP-0422). */
  retractV0: "urn:xmpp:message-retract:0",
  fasten: "urn:xmpp:fasten:0",
  reply: "urn:xmpp:reply:0",
  fallback: "urn:xmpp:fallback:0",
  reactions: "urn:xmpp:reactions:0",
  label: "urn:xmpp:sec-label:0",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
} as const;
