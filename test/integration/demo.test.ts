import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import type { AuditRecord } from "../../schemas/types.js";
import { JetStreamBus } from "../../gateway/bus/JetStreamBus.js";
import { subjects } from "../../gateway/contract/subjects.js";
import { DemoFederation, type DemoDescription } from "../../gateway/demo/demoFederation.js";
import { createLogger } from "../../gateway/log.js";
import { auditRecordsIn, eventually } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { startProsodyOrSkip, stopClient, xml, xmppClient } from "../helpers/prosody.js";
import { scratchDir } from "../helpers/scratchDir.js";

const log = createLogger("silent");
// The demo installs and starts its own servers; these probes only find out whether this machine can.
const probeNats = await startNatsOrSkip();
const probeProsody = probeNats === undefined ? undefined : await startProsodyOrSkip();
await probeNats?.stop();
await probeProsody?.stop();

function portOpen(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url.replace(/^(nats|xmpp):/, "http:"));
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe.skipIf(probeNats === undefined || probeProsody === undefined)("demo - the local federation", () => {
  it("demo - an officer logs in with the printed account, writes in the linked room, and the policy decides", async () => {
    const demo = await DemoFederation.start(log, await scratchDir("demo-test"));
    let description: DemoDescription | undefined;
    try {
      description = JSON.parse(await readFile(demo.descriptionFile, "utf8")) as DemoDescription;
      const account = description.accounts.find((a) => a.network === "xmpp");
      const prosodyUrl = description.servers["prosody"];
      expect(account).toBeDefined();
      expect(prosodyUrl).toBeDefined();
      if (account === undefined || prosodyUrl === undefined) return;

      const bus = await JetStreamBus.connect({ servers: description.nats.url, log });
      const audit: AuditRecord[] = [];
      await bus.follow("FEDGATE_AUDIT", subjects.auditAll, "start", (m) =>
        audit.push(...auditRecordsIn(m.data)),
      );
      const [localpart, domain] = account.user.split("@") as [string, string];
      const officer = xmppClient({ c2sUrl: prosodyUrl, domain }, localpart, account.password);
      const present = new Set<string>();
      officer.on("stanza", (stanza) => {
        if (stanza.is("presence")) present.add(String(stanza.attrs["from"]));
      });
      await officer.start();
      const room = description.links[0]?.endpoints.find((e) => e.network === "xmpp")?.conversation ?? "";
      await officer.send(
        xml("presence", { to: `${room}/Weber` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })),
      );
      await eventually(
        () => (present.has(`${room}/fedgate`) ? true : undefined),
        10_000,
        "the bridge in the room",
      );
      await officer.send(
        xml("message", { to: room, type: "groupchat" }, xml("body", {}, "Hallo aus Potsdam")),
      );

      const decided = await eventually(() => {
        const records = audit.filter(
          (r) =>
            r.eventType === "message.created" &&
            r.source.network === "xmpp" &&
            r.source.conversation === room,
        );
        return records.length >= 2 ? records : undefined;
      });
      expect(decided.map((r) => `${r.decision} ${r.target?.network ?? ""}`).sort()).toEqual([
        "deliver matrix",
        "deliver stashcat",
      ]);
      await stopClient(officer);
      await bus.close();
    } finally {
      await demo.stop();
    }
    // Everything the demo started is stopped.
    expect(await portOpen(description.nats.url)).toBe(false);
    expect(await portOpen(description.servers["prosody"] ?? "")).toBe(false);
  });
});
