/**
 * Who is who across networks: each remote user and the puppet that stands for them on another network.
 *
 * Keys in fedgate_identities: `puppet.<network>.<instance>.<token(userId)>` → the remote user it stands for;
 * `remote.<token(network/instance/userId)>.<network>.<instance>` → the puppet's user id on that network.
 * Puppet keys are mirrored in memory so the core's echo check costs no store read; the key, not the user id,
 * is what is mirrored, as a long id's token is a digest that cannot be read back.
 */
import { decodeJson, encodeJson, keyToken, type KeyValueStore, type KvWatch } from "../bus/KeyValueStore.js";

import type { UserRef } from "../../../schemas/contract/directConversations.js";

export type { UserRef };

export interface RemoteUser extends UserRef {
  displayName?: string;
  /** The agency's id in the policy, and its name as people read it. */
  agency?: string;
  agencyName?: string;
}

function puppetKey(puppet: UserRef): string {
  return `puppet.${puppet.network}.${puppet.instance}.${keyToken(puppet.userId)}`;
}

function remoteKey(remote: UserRef, network: string, instance: string): string {
  return `remote.${keyToken(`${remote.network}/${remote.instance}/${remote.userId}`)}.${network}.${instance}`;
}

/** A user as one string, for the in-memory puppet index. */
function userKey(user: UserRef): string {
  return `${user.network}/${user.instance}/${user.userId}`;
}

export class IdentityStore {
  /** puppetKey of every puppet. */
  private readonly puppets = new Set<string>();
  /** userKey of each puppet this process recorded → the remote user as it wrote it. */
  private readonly recorded = new Map<string, string>();
  private watcher: KvWatch | undefined;

  constructor(private readonly kv: KeyValueStore) {}

  async start(): Promise<void> {
    this.watcher = await this.kv.watch((entry) => {
      if (!entry.key.startsWith("puppet.")) return;
      if (entry.operation === "PUT") this.puppets.add(entry.key);
      else this.puppets.delete(entry.key);
    });
  }

  stop(): void {
    this.watcher?.stop();
  }

  /**
   * Records that `puppet` stands for `remote` on the puppet's network. Idempotent; adapters call it for every
   * delivery, so what this process has already written unchanged is not written again.
   */
  async record(remote: RemoteUser, puppet: UserRef): Promise<void> {
    const key = userKey(puppet);
    const written = JSON.stringify(remote);
    if (this.recorded.get(key) === written) return;
    await this.kv.put(puppetKey(puppet), encodeJson(remote));
    await this.kv.put(remoteKey(remote, puppet.network, puppet.instance), encodeJson(puppet.userId));
    this.puppets.add(puppetKey(puppet));
    this.recorded.set(key, written);
  }

  /** The puppet user id that stands for `remote` on network/instance, if one was made. */
  async puppetFor(remote: UserRef, network: string, instance: string): Promise<string | undefined> {
    const entry = await this.kv.get(remoteKey(remote, network, instance));
    return entry === undefined ? undefined : (decodeJson(entry.value) as string);
  }

  /** The remote user a puppet stands for. */
  async remoteFor(puppet: UserRef): Promise<RemoteUser | undefined> {
    const entry = await this.kv.get(puppetKey(puppet));
    return entry === undefined ? undefined : (decodeJson(entry.value) as RemoteUser);
  }

  /** True when this user is one of fedgate's puppets: its events must never be bridged back. O(1). */
  isPuppet(user: UserRef): boolean {
    return this.puppets.has(puppetKey(user));
  }
}
