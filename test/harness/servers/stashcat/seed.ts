/**
 * The people and chats a Stashcat test server starts with. A seed is the fixture author's knowledge: the
 * passwords, each user's key pair and each chat's AES key, so that tests can act as any user. The server
 * itself keeps only what a real one would: the locked private key, the public key and each chat key
 * wrapped for each member.
 */
import { randomBytes, type KeyObject } from "node:crypto";
import { newKey, newKeyPair } from "../../../../bridges/stashcat/crypto.js";

export interface SeedUser {
  id: number;
  email: string;
  password: string;
  /** Locks the private key; Stashcat's "security password", often but not here the login password. */
  encryptionPassword: string;
  firstName: string;
  lastName: string;
  /**
   * The forms `security/get_private_key` holds the locked private key in: the legacy PEM (what a request
   * without `format` gets) and the JWK form (`format=jwk`). An account made by an older client has only PEM.
   */
  keyForms: readonly ("pem" | "jwk")[];
  /** PEM SPKI, as `users/info` gives it. */
  publicKey: string;
  /** For tests that act as this user without unlocking the key through the API. */
  privateKey: KeyObject;
  /** The companies the user belongs to; default: every company of the seed. */
  companyIds?: number[];
}

export interface SeedChannel {
  id: number;
  name: string;
  companyId: number;
  memberIds: number[];
  /** Members who may manage the channel (delete others' messages); default: none. */
  managerIds?: number[];
  description?: string;
  /** The channel's AES-256 key; the server hands it out wrapped for each member. */
  key: Buffer;
}

export interface SeedConversation {
  id: number;
  memberIds: number[];
  /** The conversation's AES-256 key; the server hands it out wrapped for each member. */
  key: Buffer;
}

export interface Seed {
  companies: { id: number; name: string }[];
  users: SeedUser[];
  channels: SeedChannel[];
  conversations: SeedConversation[];
}

/** A user with a fresh key pair; passwords are random unless given. */
export function seedUser(
  fields: Omit<SeedUser, "publicKey" | "privateKey" | "password" | "encryptionPassword"> &
    Partial<Pick<SeedUser, "password" | "encryptionPassword">>,
): SeedUser {
  const { publicKey, privateKey } = newKeyPair();
  return {
    password: `pw-${randomBytes(9).toString("base64url")}`,
    encryptionPassword: `enc-${randomBytes(9).toString("base64url")}`,
    ...fields,
    publicKey,
    privateKey,
  };
}

/** The bridge's account and two officers of Polizei Niedersachsen, two channels and one conversation. */
export function stashcatSeed(): Seed {
  const domain = "polizei.niedersachsen.de";
  const bridge = seedUser({
    id: 4700,
    email: `fedgate-bridge@${domain}`,
    firstName: "fedgate",
    lastName: "Bridge",
    keyForms: ["pem", "jwk"],
  });
  const meyer = seedUser({
    id: 4711,
    email: `meyer@${domain}`,
    firstName: "POK",
    lastName: "Meyer",
    // An older account: the legacy form only, so that a client asking for JWK first must fall back.
    keyForms: ["pem"],
  });
  const schulz = seedUser({
    id: 4712,
    email: `schulz@${domain}`,
    firstName: "PK'in",
    lastName: "Schulz",
    keyForms: ["pem", "jwk"],
  });
  return {
    companies: [{ id: 1, name: "Polizei Niedersachsen" }],
    users: [bridge, meyer, schulz],
    channels: [
      {
        id: 1001,
        name: "Einsatz",
        companyId: 1,
        memberIds: [bridge.id, meyer.id, schulz.id],
        managerIds: [meyer.id],
        description: "Lage und Einsatz",
        key: newKey(),
      },
      {
        id: 1002,
        name: "Dienstgruppe",
        companyId: 1,
        memberIds: [meyer.id, schulz.id],
        managerIds: [schulz.id],
        description: "Dienstgruppe intern",
        key: newKey(),
      },
    ],
    conversations: [{ id: 2001, memberIds: [meyer.id, schulz.id], key: newKey() }],
  };
}
