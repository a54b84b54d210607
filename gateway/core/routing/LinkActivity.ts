/**
 * When each link last carried something, per direction: "inbound" when an event from one of its conversations
 * reached the core, "outbound" when a delivery to one of them was stored. Reported as a gauge in unix seconds
 * (fedgate_link_last_activity_seconds), so an operator sees a link that went quiet; one series per link and
 * direction.
 */
import { observableGauge } from "../../platform/telemetry.js";
import type { LinkStore } from "../../platform/stores/LinkStore.js";

export type LinkDirection = "inbound" | "outbound";

/**
 * The routers' activity records, held weakly: one gauge for the process, and a router that is gone (tests make
 * many) takes its record with it.
 */
const activities = new Set<WeakRef<LinkActivity>>();

observableGauge(
  "fedgate.link.last_activity_seconds",
  {
    description:
      "When a link last carried an event (unix seconds), per link and direction (inbound, outbound)",
  },
  (report) => {
    for (const ref of activities) {
      const activity = ref.deref();
      if (activity === undefined) activities.delete(ref);
      else activity.report(report);
    }
  },
);

export class LinkActivity {
  /** Unix milliseconds per link id and direction; a deleted link's entries are dropped at the next collection. */
  private readonly last = new Map<string, Partial<Record<LinkDirection, number>>>();

  constructor(private readonly links: Pick<LinkStore, "get">) {
    activities.add(new WeakRef(this));
  }

  note(link: string, direction: LinkDirection): void {
    const times = this.last.get(link);
    if (times === undefined) this.last.set(link, { [direction]: Date.now() });
    else times[direction] = Date.now();
  }

  report(report: (value: number, attributes: Record<string, string>) => void): void {
    for (const [link, times] of this.last) {
      if (this.links.get(link) === undefined) {
        this.last.delete(link);
        continue;
      }
      for (const direction of ["inbound", "outbound"] as const) {
        const at = times[direction];
        if (at !== undefined) report(Math.floor(at / 1000), { link, direction });
      }
    }
  }
}
