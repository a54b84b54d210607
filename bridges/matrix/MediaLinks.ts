/**
 * Matrix files as other bridges see them: links the bridge serves, signed and expiring, and the description
 * of a file in a Matrix message.
 */
import type { Attachment } from "../../schemas/types.js";
import { attachmentFetchOptions, describeAttachment } from "../kit/fetchAttachment.js";
import type { MatrixAttachments, MatrixBridgeConfig } from "./config.types.js";
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

  /** A link other bridges fetch a Matrix file from; it expires (attachments.linkLifetimeSeconds). */
  link(mxc: string, name: string): string {
    const lifetimeSeconds = this.config.attachments.linkLifetimeSeconds;
    return mediaLink({ key: this.mediaKey, baseUrl: this.config.publicUrl, lifetimeSeconds }, mxc, name);
  }

  /**
   * A file in a Matrix message: its size, hash and type from the homeserver's copy (the type its bytes show,
   * not the one the message declares), and a link the bridge serves. The homeserver is trusted wherever it is.
   */
  async describeMedia(media: MatrixMedia): Promise<Attachment> {
    const { url, headers } = this.client.mediaDownload(media.mxc);
    const described = await describeAttachment(url, {
      ...attachmentFetchOptions(this.config.attachments, [this.config.homeserverUrl]),
      headers,
    });
    return { ...described, name: media.name, url: this.link(media.mxc, media.name) };
  }
}
