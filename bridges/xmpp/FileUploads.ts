/** A delivery's files, carried to the server's HTTP File Upload service (XEP-0363) as the puppet. */
import type { Logger } from "pino";
import type { Delivery } from "../../schemas/types.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import { carryAttachments } from "../kit/carryAttachments.js";
import { attachmentFetchOptions, fetchAttachment } from "../kit/fetchAttachment.js";
import type { XmppBridgeConfig } from "./config.types.js";
import { discoverUploadService, requestSlot, upload, type IqRequester } from "./httpUpload.js";

export class FileUploads {
  private discoveredUploadService: Promise<string> | undefined;

  constructor(
    private readonly component: IqRequester,
    private readonly botJid: string,
    private readonly config: Pick<XmppBridgeConfig, "attachments" | "userDomains">,
    private readonly log: Logger,
  ) {}

  /**
   * Re-uploads a delivery's files to the server's upload service as the puppet. A file that cannot be carried
   * for good (too large, gone, not what the event says) becomes a line of text saying so; a passing failure
   * throws, and the delivery is retried.
   */
  async uploadFiles(
    delivery: Delivery,
    from: string,
  ): Promise<{ uploaded: { url: string; name: string }[]; notes: string[] }> {
    const { carried, notCarried } = await carryAttachments(
      delivery.event,
      async (attachment) => {
        const bytes = await fetchAttachment(attachment, attachmentFetchOptions(this.config.attachments));
        const slot = await requestSlot(this.component, {
          service: await this.uploadService(),
          from,
          filename: attachment.name,
          size: attachment.size,
          contentType: attachment.mediaType,
        });
        await upload(slot, bytes, attachment.mediaType);
        return { url: slot.get, name: attachment.name };
      },
      this.log,
      "XMPP",
    );
    return {
      uploaded: carried.map((c) => c.result),
      notes: notCarried.map((n) => `[${n.attachment.name}: not bridged, ${n.reason}]`),
    };
  }

  /** The upload service puppets use: configured, or discovered once on the users' server. */
  private uploadService(): Promise<string> {
    const configured = this.config.attachments.uploadService;
    if (configured !== undefined) return Promise.resolve(configured);
    const domain = this.config.userDomains[0];
    this.discoveredUploadService ??= discoverUploadService(this.component, this.botJid, domain).then(
      (service) => {
        if (service === undefined) {
          throw new PermanentError(
            "FG_ATTACHMENT_INVALID",
            `${domain} offers no HTTP File Upload service (XEP-0363)`,
          );
        }
        return service.jid;
      },
    );
    // A failed discovery is tried again with the next file.
    this.discoveredUploadService.catch(() => (this.discoveredUploadService = undefined));
    return this.discoveredUploadService;
  }
}
