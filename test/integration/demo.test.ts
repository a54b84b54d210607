import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect } from "node:net";
import { describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import type { Config } from "../../schemas/types.js";
import { DemoFederation, type DemoDescription } from "../harness/demo/demoFederation.js";
import { createLogger } from "../../gateway/platform/log.js";
import { eventually } from "../helpers/fixtures.js";
import {
  demoConversation,
  demoGateway,
  demoOfficer,
  demoServersAvailable,
  followAudit,
  roomTexts,
  tchapOfficialClient,
} from "../helpers/demoScenes.js";
import { stopClient, xml, xmppClient } from "../helpers/prosody.js";
import { runDemo } from "../helpers/processes.js";
import { scratchDir } from "../helpers/scratchDir.js";

const log = createLogger("silent");
// The official's client logs every sync and key request, and its Rust crypto traces at debug level, to the console.
for (const level of ["debug", "info"] as const) vi.spyOn(console, level).mockImplementation(() => undefined);
const available = await demoServersAvailable();

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

describe.skipIf(!available)("demo - the local federation", () => {
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

      // Two gateways, each deciding and auditing for itself.
      expect(description.gateways.map((g) => `${g.id}: ${g.networks.sort().join(" ")}`)).toEqual([
        "de: stashcat xmpp",
        "fr: matrix",
      ]);
      expect(description.shared.consent).toEqual({ de: "active", fr: "active" });
      const deAudit = await followAudit(demoGateway(description, "xmpp"), log);
      const frAudit = await followAudit(demoGateway(description, "matrix"), log);
      // Everything is on loopback: each bridge's config lists where the others serve their files.
      const bridgeConfigs: Record<string, { attachments?: { hosts?: string[] } }> = {};
      for (const gateway of description.gateways)
        Object.assign(bridgeConfigs, (parse(await readFile(gateway.configFile, "utf8")) as Config).bridges);
      const matrixFiles = description.servers["matrix-bridge"] ?? "?";
      expect(bridgeConfigs["xmpp"]?.attachments?.hosts).toContain(matrixFiles);
      expect(bridgeConfigs["stashcat"]?.attachments?.hosts).toContain(matrixFiles);
      expect(bridgeConfigs["matrix"]?.attachments?.hosts).not.toContain(matrixFiles);
      // The Tchap official's client, which encrypts as Element does, is on before anyone writes: a device gets
      // the room keys of what is said after it exists.
      const official = description.accounts.find((a) => a.network === "matrix");
      const tchapRoom = demoConversation(description, "matrix");
      expect(official).toBeDefined();
      if (official === undefined) return;
      const claire = await tchapOfficialClient(official);
      // The demo's Tchap room is encrypted.
      expect(claire.getRoom(tchapRoom)?.hasEncryptionStateEvent()).toBe(true);
      const [localpart, domain] = account.user.split("@") as [string, string];
      const officer = xmppClient({ c2sUrl: prosodyUrl, domain }, localpart, account.password);
      const present = new Set<string>();
      officer.on("stanza", (stanza) => {
        if (stanza.is("presence")) present.add(String(stanza.attrs["from"]));
      });
      const heard: string[] = [];
      officer.on("stanza", (stanza) => {
        const body = stanza.is("message") ? stanza.getChildText("body") : null;
        if (body !== null) heard.push(body);
      });
      await officer.start();
      const room = demoConversation(description, "xmpp");
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
        const records = deAudit.records.filter(
          (r) =>
            r.eventType === "message.created" &&
            r.source.network === "xmpp" &&
            r.source.conversation === room,
        );
        return records.length >= 2 ? records : undefined;
      });
      // Germany releases it to France's gateway; France decides it again, under its own policy.
      expect(decided.map((r) => `${r.decision} ${r.target?.network ?? ""}`).sort()).toEqual([
        "deliver federation",
        "deliver stashcat",
      ]);
      const eventId = decided[0]?.eventId;
      const decidedInFrance = await eventually(
        () => frAudit.records.find((r) => r.eventId === eventId),
        20_000,
      );
      expect(decidedInFrance).toMatchObject({
        decision: "deliver",
        source: { network: "federation", instance: "de", agency: "bpol" },
        target: { network: "matrix" },
      });

      // The Tchap official reads the officer's message in the linked room, encrypted by the officer's ghost and
      // decrypted by her client, and answers, encrypted by her client.
      const fromOfficer = await eventually(
        () => roomTexts(claire, tchapRoom).find((e) => e.body === "Hallo aus Potsdam"),
        30_000,
        "the officer's message in the Tchap room, decrypted",
      );
      expect(fromOfficer.encrypted).toBe(true);
      // On the French side, German people come through Germany's gateway.
      expect(fromOfficer.sender).toMatch(/^@fedgate_federation_de_weber/);
      const { event_id: answer } = await claire.sendTextMessage(tchapRoom, "Bonjour de Paris");
      expect(claire.getRoom(tchapRoom)?.findEventById(answer)?.getWireType()).toBe("m.room.encrypted");
      await eventually(
        () => (heard.includes("Bonjour de Paris") ? true : undefined),
        20_000,
        "the official's answer in the XMPP room",
      );

      // The Lower Saxony officer reads the XMPP officer's message in the linked Stashcat channel, decrypted,
      // and writes; it reaches the XMPP room and the Tchap room.
      const meyer = await demoOfficer(description, log);
      const channel = { type: "channel" as const, id: 1001 };
      await eventually(
        async () =>
          (await meyer.read(channel)).some((m) => m.plain.includes("Hallo aus Potsdam")) ? true : undefined,
        20_000,
        "the officer's message in the Stashcat channel",
      );
      await meyer.say(channel, "Moin aus Hannover");
      await eventually(
        () => (heard.some((b) => b.includes("Moin aus Hannover")) ? true : undefined),
        20_000,
        "the Stashcat message in the XMPP room",
      );
      const fromMeyer = await eventually(
        () => roomTexts(claire, tchapRoom).find((e) => e.body.includes("Moin aus Hannover")),
        30_000,
        "the Stashcat message in the Tchap room, decrypted",
      );
      expect(fromMeyer.encrypted).toBe(true);

      // What an operator scrapes: the core's counters and each bridge's connection, moving with the traffic.
      const scrape = async (url: string): Promise<string> => (await fetch(url)).text();
      for (const gateway of description.gateways) {
        const metrics = await scrape(`${gateway.admin.url}/metrics`);
        expect(metrics).toMatch(/^fedgate_decisions_total\{[^}]*decision="deliver"[^}]*\} [1-9]/m);
      }
      for (const network of ["xmpp", "matrix", "stashcat"]) {
        const url = description.servers[`${network}-bridge-metrics`];
        expect(url).toBeDefined();
        const metrics = await scrape(url ?? "");
        expect(metrics).toMatch(
          new RegExp(`^fedgate_bridge_connected\\{[^}]*network="${network}"[^}]*\\} 1$`, "m"),
        );
      }
      claire.stopClient();
      await stopClient(officer);
      await deAudit.close();
      await frAudit.close();
    } finally {
      await demo.stop();
    }
    // Everything the demo started is stopped.
    for (const gateway of description.gateways) expect(await portOpen(gateway.nats.url)).toBe(false);
    expect(await portOpen(description.servers["prosody"] ?? "")).toBe(false);
    expect(await portOpen(description.servers["synapse"] ?? "")).toBe(false);
    expect(await portOpen(description.servers["matrix-bridge"] ?? "")).toBe(false);
    expect(await portOpen(description.servers["stashcat"] ?? "")).toBe(false);
  });

  it("demo - Ctrl-C in the terminal stops everything the demo started, in order", async () => {
    const dir = await scratchDir("demo-ctrl-c");
    const demo = runDemo(["up", "--dir", dir], {}, { ownGroup: true });
    await demo.waitFor("Ctrl-C stops everything", 120_000);
    const description = JSON.parse(await readFile(join(dir, "demo.json"), "utf8")) as DemoDescription;
    // The console's address and an agency admin's token are printed, and that token logs in.
    for (const gateway of description.gateways) {
      expect(demo.output()).toContain(`console:          ${gateway.console.url}`);
      expect(demo.output()).toContain(`with token ${gateway.console.token}`);
      const login = await fetch(`${gateway.console.url}login`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: gateway.console.token }).toString(),
      });
      expect(login.status).toBe(303);
    }
    // What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.
    process.kill(-(demo.child.pid ?? 0), "SIGINT");
    const code = await Promise.race([
      demo.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve("still running after 60 s"), 60_000)),
    ]);
    if (code === "still running after 60 s") process.kill(-(demo.child.pid ?? 0), "SIGKILL");
    expect(code).toBe(0);
    expect(demo.output()).toContain("fedgate demo: stopping");
    for (const url of [...description.gateways.map((g) => g.nats.url), ...Object.values(description.servers)])
      expect(await portOpen(url), url).toBe(false);
  });
});
