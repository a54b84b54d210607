/**
 * Two gateways' nats-servers joined by a leafnode, each with the accounts federationServerConfig gives it:
 * only fedgate.v1.federation.<from>.<to> crosses, each way; nothing else of either bus, no JetStream API,
 * no other partner's subjects. Whoever sits in the link's account (a partner's compromised server) can send
 * only what the other side imports.
 */
import { randomBytes } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalNatsServer } from "../../harness/servers/LocalNatsServer.js";
import { freePort } from "../../harness/servers/serverProcess.js";
import { federationServerConfig } from "../../../gateway/core/federation/federationAccounts.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip, untilCarried } from "../../helpers/nats.js";

const core = { user: "core", password: randomBytes(12).toString("hex") };
const leaf = { user: "fr-leaf", password: randomBytes(12).toString("hex") };
const leafPort = await freePort();
const de = await startNatsOrSkip({
  config: federationServerConfig({
    self: "de",
    gateway: core,
    partners: [{ id: "fr", accepts: leaf }],
    leafnodeListen: { host: "127.0.0.1", port: leafPort },
  }),
});
const fr =
  de === undefined
    ? undefined
    : await startNatsOrSkip({
        config: federationServerConfig({
          self: "fr",
          gateway: core,
          partners: [{ id: "de", connects: { url: `nats-leaf://127.0.0.1:${String(leafPort)}`, ...leaf } }],
        }),
      });

/** What a connection hears on `>`, leaving out replies and the servers' own subjects. */
function hearAll(nc: NatsConnection): string[] {
  const heard: string[] = [];
  const subscription = nc.subscribe(">");
  void (async () => {
    for await (const m of subscription)
      if (!m.subject.startsWith("$") && !m.subject.startsWith("_INBOX")) heard.push(m.subject);
  })();
  return heard;
}

async function asks(nc: NatsConnection, subject: string): Promise<string> {
  try {
    const answer = await nc.request(subject, "", { timeout: 1500 });
    return answer.string().includes("api") ? "answered" : `answered: ${answer.string().slice(0, 80)}`;
  } catch {
    return "no answer";
  }
}

describe.skipIf(de === undefined || fr === undefined)("federation - leafnode accounts", () => {
  let deCore: NatsConnection;
  let frCore: NatsConnection;
  /** Sits in the link's account on the German server, as a compromised or careless operator could. */
  let inLink: NatsConnection;
  const opened: NatsConnection[] = [];
  const servers = (): [LocalNatsServer, LocalNatsServer] => [de as LocalNatsServer, fr as LocalNatsServer];

  beforeAll(async () => {
    const [deServer, frServer] = servers();
    const open = async (url: string, who: { user: string; password: string }): Promise<NatsConnection> => {
      const nc = await connect({ servers: url, user: who.user, pass: who.password });
      opened.push(nc);
      return nc;
    };
    deCore = await open(deServer.url, core);
    frCore = await open(frServer.url, core);
    inLink = await open(deServer.url, leaf);
    // The leafnode is up once what Germany sends France arrives.
    await untilCarried(deCore, frCore, "fedgate.v1.federation.de.fr.probe");
  }, 60_000);

  afterAll(async () => {
    for (const nc of opened) await nc.close();
    for (const server of [fr, de]) await server?.stop();
  });

  it("federation - only what each gateway sends the other crosses the leafnode; no other subject, either way", async () => {
    const frHears = hearAll(frCore);
    const deHears = hearAll(deCore);
    await frCore.flush();
    await deCore.flush();
    const fromDe = [
      "fedgate.v1.federation.de.fr.event.1",
      "fedgate.v1.inbound.xmpp.bpol.3",
      "fedgate.v1.outbound.matrix.tchap",
      "fedgate.v1.audit.deliver",
      "fedgate.v1.federation.de.nl.event.1",
    ];
    const fromFr = [
      "fedgate.v1.federation.fr.de.event.1",
      "fedgate.v1.outbound.xmpp.bpol",
      "fedgate.v1.inbound.stashcat.ni.7",
      "fedgate.v1.federation.nl.de.event.1",
      "fedgate.v1.federation.fr.nl.event.1",
    ];
    for (const subject of fromDe) deCore.publish(subject, "de");
    for (const subject of fromFr) frCore.publish(subject, "fr");
    await deCore.flush();
    await frCore.flush();
    await eventually(
      () =>
        frHears.includes("fedgate.v1.federation.de.fr.event.1") &&
        deHears.includes("fedgate.v1.federation.fr.de.event.1")
          ? true
          : undefined,
      10_000,
      "the federation subjects",
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Each hears its own publications, and of the other's only what the other sends it.
    expect(frHears.filter((s) => !fromFr.includes(s))).toEqual(["fedgate.v1.federation.de.fr.event.1"]);
    expect(deHears.filter((s) => !fromDe.includes(s))).toEqual(["fedgate.v1.federation.fr.de.event.1"]);
  });

  it("federation - a partner cannot reach the other gateway's JetStream: no stream listed, read or managed", async () => {
    expect(await asks(deCore, "$JS.API.INFO")).toBe("answered");
    expect(await asks(frCore, "$JS.API.INFO")).toBe("answered");
    for (const subject of [
      "$JS.de.API.INFO",
      "$JS.de.API.STREAM.NAMES",
      "$JS.de.API.STREAM.INFO.FEDGATE_INBOUND",
      "$JS.de.API.STREAM.DELETE.FEDGATE_INBOUND",
      "$JS.API.STREAM.NAMES",
    ])
      expect(`${subject}: ${await asks(inLink, subject)}`).toBe(`${subject}: no answer`);
    expect(await asks(frCore, "$JS.de.API.INFO")).toBe("no answer");
  });

  it("federation - whatever sits in the link's account reaches the other gateway only on the subjects it imports", async () => {
    const frHears = hearAll(frCore);
    const linkHears = hearAll(inLink);
    await frCore.flush();
    await inLink.flush();
    deCore.publish("fedgate.v1.inbound.xmpp.bpol.3", "internal");
    for (const subject of [
      "fedgate.v1.outbound.matrix.tchap",
      "fedgate.v1.federation.nl.fr.event.2",
      "fedgate.v1.federation.de.fr.event.2",
    ])
      inLink.publish(subject, "from the link");
    await deCore.flush();
    await inLink.flush();
    await eventually(
      () => (frHears.includes("fedgate.v1.federation.de.fr.event.2") ? true : undefined),
      10_000,
      "the imported subject",
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(frHears).toEqual(["fedgate.v1.federation.de.fr.event.2"]);
    // The link's account never sees the German bus inside.
    expect(linkHears.filter((s) => s.includes("inbound"))).toEqual([]);
  });
});
