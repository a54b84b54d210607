/**
 * A direct chat between two people on two networks is a link of two endpoints of kind "direct". Each
 * endpoint's conversation names both people in a form every adapter can build and read without knowing the
 * other's protocol: the participant on that network, then the peer as network/instance/userId.
 *
 *   officer@bpol.example|matrix/tchap/@agent:tchap.gouv.fr
 *
 * "%" and "|" in a user id are percent-encoded, so the first "|" always ends the participant.
 */
import { createHash } from "node:crypto";
import type { Endpoint } from "../types.js";

const TOKEN = /^[a-z][a-z0-9-]{0,31}$/;

function encode(userId: string): string {
  return userId.replace(/%/g, "%25").replace(/\|/g, "%7C");
}

function decode(part: string): string {
  return part.replace(/%7C/gi, "|").replace(/%25/g, "%");
}

export interface DirectConversation {
  /** The user on the endpoint's own network. */
  participant: string;
  /** The person they talk with, on another network. */
  peer: UserRef;
}

/** A person on one network: whom a direct chat is with. */
export interface UserRef {
  network: string;
  instance: string;
  userId: string;
}

export function directConversation(participant: string, peer: UserRef): string {
  return `${encode(participant)}|${peer.network}/${peer.instance}/${encode(peer.userId)}`;
}

/** undefined when `conversation` is not a direct conversation id. */
export function parseDirectConversation(conversation: string): DirectConversation | undefined {
  const bar = conversation.indexOf("|");
  if (bar <= 0) return undefined;
  const [network, instance, ...rest] = conversation.slice(bar + 1).split("/");
  const userId = rest.join("/");
  if (network === undefined || instance === undefined || userId === "") return undefined;
  if (!TOKEN.test(network) || !TOKEN.test(instance)) return undefined;
  return {
    participant: decode(conversation.slice(0, bar)),
    peer: { network, instance, userId: decode(userId) },
  };
}

/** A stable link id for the direct chat between two people, whichever side opens it. */
export function directLinkId(a: UserRef, b: UserRef): string {
  const [first, second] = [a, b].map((u) => `${u.network}/${u.instance}/${u.userId}`).sort();
  return `dm-${hash(`${first ?? ""}\n${second ?? ""}`)}`;
}

/**
 * The link for a direct chat between `native` (on the adapter's network, of `nativeAgency`) and `peer`
 * (of `peerAgency`).
 */
export function directLink(
  native: UserRef,
  nativeAgency: string,
  peer: UserRef,
  peerAgency: string,
): { id: string; endpoints: Endpoint[] } {
  return {
    id: directLinkId(native, peer),
    endpoints: [
      {
        network: native.network,
        instance: native.instance,
        conversation: directConversation(native.userId, peer),
        agency: nativeAgency,
        kind: "direct",
      },
      {
        network: peer.network,
        instance: peer.instance,
        conversation: directConversation(peer.userId, native),
        agency: peerAgency,
        kind: "direct",
      },
    ],
  };
}

function hash(text: string): string {
  // Link ids allow 63 characters: 32 hex digits of SHA-256 are plenty against collisions.
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}
