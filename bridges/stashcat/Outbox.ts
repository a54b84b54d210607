/** The deliveries the bridge began to post, by delivery id: a second handling looks for the first's message. */
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import {
  encodeJson,
  KeyExistsError,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";

const OUTBOX_BUCKET = "fedgate_stashcat_sent";
/** How long a delivery is remembered there: longer than it can wait for a redelivery. */
const OUTBOX_TTL_MS = 7 * 24 * 3600 * 1000;

export class Outbox {
  private constructor(private readonly bucket: KeyValueStore) {}

  static async open(bus: Pick<Bus, "keyValue">): Promise<Outbox> {
    return new Outbox(await bus.keyValue(OUTBOX_BUCKET, { ttlMs: OUTBOX_TTL_MS }));
  }

  /** Notes the delivery as begun, with the marker of its message; false when a handling before noted it. */
  async begin(deliveryId: string, marker: string): Promise<boolean> {
    try {
      await this.bucket.create(keyToken(deliveryId), encodeJson(marker));
      return true;
    } catch (error) {
      if (error instanceof KeyExistsError) return false;
      throw error;
    }
  }
}
