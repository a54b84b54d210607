/**
 * Matrix files as other bridges see them: links the bridge serves, signed and expiring, and the description
 * of a file in a Matrix message.
 */
import { createHash } from "node:crypto";
import { PermanentError } from "../../schemas/contract/errors.js";
import type { Attachment } from "../../schemas/types.js";
import {
  attachmentFetchOptions,
  describeAttachment,
  fetchFile,
  normaliseMediaType,
} from "../kit/fetchAttachment.js";
import { mediaTypeOfBytes } from "../kit/mediaTypeOfBytes.js";
import type { MatrixAttachments, MatrixBridgeConfig } from "./config.types.js";
import { decryptAttachment, type AttachmentKeys } from "./crypto/encryptedAttachment.js";
import type { MatrixClient } from "./MatrixClient.js";
import { mediaLink } from "./MediaProxy.js";
import type { MatrixMedia } from "./toNormalisedEvent.js";

export type MediaLinksConfig = Pick<MatrixBridgeConfig, "homeserverUrl"> & {
  attachments: MatrixAttachments & { maxBytes: number };
  publicUrl: string;
};

export class MediaLinks {
  constructor(
    private readonly config: MediaLinksConfig,
    /** Signs the file links the bridge serves. */
    private readonly mediaKey: Buffer,
    private readonly client: Pick<MatrixClient, "mediaDownload">,
  ) {}

  /**
   * A link other bridges fetch a Matrix file from; it expires (attachments.linkLifetimeSeconds). With
   * `keys`, the file at `mxc` is an encrypted attachment and the link gives its plaintext.
   */
  link(mxc: string, name: string, keys?: AttachmentKeys): string {
    const lifetimeSeconds = this.config.attachments.linkLifetimeSeconds;
    const options = { key: this.mediaKey, baseUrl: this.config.publicUrl, lifetimeSeconds };
    return mediaLink(options, mxc, name, undefined, keys);
  }

  /**
   * A file in a Matrix message: its size, hash and type from the homeserver's copy (the type its bytes show,
   * not the one the message declares), and a link the bridge serves. The homeserver is trusted wherever it is.
   */
  async describeMedia(media: MatrixMedia): Promise<Attachment> {
    if (media.keys !== undefined) return this.describeEncrypted(media, media.keys);
    const { url, headers } = this.client.mediaDownload(media.mxc);
    const described = await describeAttachment(url, {
      ...attachmentFetchOptions(this.config.attachments, [this.config.homeserverUrl]),
      headers,
    });
    return { ...described, name: media.name, url: this.link(media.mxc, media.name) };
  }

  /**
   * An encrypted attachment, described as its plaintext: the ciphertext is downloaded (within the same
   * limit, refused before downloading when the event already says it is larger), its hash checked, and it
   * is decrypted. The type is what the plaintext's bytes show against the type the event declares (the
   * homeserver's is only the ciphertext's). FG_ATTACHMENT_INVALID for a file that does not open.
   */
  private async describeEncrypted(media: MatrixMedia, keys: AttachmentKeys): Promise<Attachment> {
    const { maxBytes } = this.config.attachments;
    if (media.size !== undefined && media.size > maxBytes)
      throw new PermanentError(
        "FG_ATTACHMENT_INVALID",
        `encrypted attachment of ${media.size} bytes: larger than the limit of ${maxBytes} bytes`,
        { detail: { maxBytes, size: media.size } },
      );
    const { url, headers } = this.client.mediaDownload(media.mxc);
    const { bytes } = await fetchFile(url, {
      ...attachmentFetchOptions(this.config.attachments, [this.config.homeserverUrl]),
      headers,
    });
    const plaintext = decryptAttachment(bytes, keys);
    return {
      name: media.name,
      mediaType: await mediaTypeOfBytes(normaliseMediaType(media.mediaType), plaintext),
      size: plaintext.length,
      sha256: createHash("sha256").update(plaintext).digest("hex"),
      url: this.link(media.mxc, media.name, keys),
    };
  }
}
