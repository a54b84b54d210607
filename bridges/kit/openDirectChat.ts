/**
 * Opening a direct chat between a user of the adapter's network and a remote person a puppet stands for:
 * the same for every bridge, so that a chat opened from either side is one link.
 */
import { directConversation, directLink } from "../../schemas/contract/directConversations.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { RemoteUser, UserRef } from "../../gateway/platform/stores/IdentityStore.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";

/**
 * The direct conversation of `native` with `remote`, linked on first use with `nativeAgency` owning the
 * native side. Resolves with the native side's conversation. Throws FG_NATIVE_INVALID (with `detail`) when
 * the adapter has no agency for its users, so direct chats are not enabled.
 */
export async function openDirectChat(
  links: LinkStore,
  native: UserRef,
  nativeAgency: string | undefined,
  remote: RemoteUser & { agency: string },
  log: Logger,
  refusalDetail: Record<string, unknown> = {},
): Promise<string> {
  const conversation = directConversation(native.userId, remote);
  const ref = { network: native.network, instance: native.instance, conversation };
  if ((await links.resolve(ref)) !== undefined) return conversation;
  if (nativeAgency === undefined) {
    throw new PermanentError(
      "FG_NATIVE_INVALID",
      `direct chats are not enabled on this server (bridges.${native.network}.agency is not set)`,
      { detail: refusalDetail },
    );
  }
  try {
    await links.create(directLink(native, nativeAgency, remote, remote.agency));
    log.info({ native: native.userId, remote: `${remote.network}/${remote.instance}` }, "direct chat opened");
  } catch (error) {
    // Opened a moment ago from the other side, or by a message that was handled meanwhile.
    if (!(error instanceof PermanentError && error.code === "FG_LINK_CONFLICT")) throw error;
  }
  return conversation;
}
