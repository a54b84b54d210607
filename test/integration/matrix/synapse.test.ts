/**
 * The Matrix test server itself: what the bridge's tests rely on — accounts made through the shared-secret
 * API, password logins, rooms, invites and /sync between two users, restarts that keep everything, and an
 * application service registration that Synapse accepts.
 */
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { eventually } from "../../helpers/fixtures.js";
import { startSynapseOrSkip } from "../../helpers/synapse.js";

const asToken = randomBytes(24).toString("hex");
const hsToken = randomBytes(24).toString("hex");
// Nothing listens there: Synapse only queues transactions for it, which this test does not need.
const registration = `id: fedgate
url: http://127.0.0.1:9
as_token: ${asToken}
hs_token: ${hsToken}
sender_localpart: fedgate
rate_limited: false
namespaces:
  users:
    - exclusive: true
      regex: "@fedgate_.*:tchap\\\\.localhost"
  aliases: []
  rooms: []
`;

const synapse = await startSynapseOrSkip({ appServiceRegistrations: [registration] });

type Json = Record<string, unknown>;

/** One client-server API call; fails with Synapse's answer unless it is 200. */
async function matrix(
  method: "GET" | "POST" | "PUT",
  path: string,
  token: string | undefined,
  body?: Json,
): Promise<Json> {
  if (synapse === undefined) throw new Error("no synapse");
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  const response = await fetch(`${synapse.baseUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = (await response.json()) as Json;
  if (response.status !== 200)
    throw new Error(`${method} ${path}: ${String(response.status)} ${JSON.stringify(answer)}`);
  return answer;
}

async function login(user: string, password: string): Promise<string> {
  const answer = await matrix("POST", "/_matrix/client/v3/login", undefined, {
    type: "m.login.password",
    identifier: { type: "m.id.user", user },
    password,
  });
  return String(answer["access_token"]);
}

interface TimelineEvent {
  type: string;
  sender: string;
  content: { body?: string };
}

/** The text messages /sync shows in a room, syncing from `since` until one with `body` arrives. */
async function syncUntil(token: string, roomId: string, body: string): Promise<TimelineEvent> {
  let since: string | undefined;
  return eventually(
    async () => {
      const query = new URLSearchParams({ timeout: "1000" });
      if (since !== undefined) query.set("since", since);
      const answer = await matrix("GET", `/_matrix/client/v3/sync?${query.toString()}`, token);
      since = String(answer["next_batch"]);
      const rooms = answer["rooms"] as { join?: Record<string, { timeline: { events: TimelineEvent[] } }> };
      const events = rooms.join?.[roomId]?.timeline.events ?? [];
      return events.find((event) => event.type === "m.room.message" && event.content.body === body);
    },
    20_000,
    `"${body}" in /sync`,
  );
}

describe.skipIf(synapse === undefined)("Synapse harness", () => {
  let roomId = "";
  let officialToken = "";
  let officialId = "";
  let otherId = "";

  afterAll(async () => {
    await synapse?.stop();
  });

  it("Synapse harness - two users log in; one invites the other to a room and they read each other via /sync", async () => {
    if (synapse === undefined) return;
    expect(synapse.serverName).toBe("tchap.localhost");
    const official = await synapse.registerUser("official", "pw-official", true);
    const other = await synapse.registerUser("weber", "pw-weber");
    officialId = official.userId;
    otherId = other.userId;
    expect(officialId).toBe("@official:tchap.localhost");
    expect(otherId).toBe("@weber:tchap.localhost");

    officialToken = await login("official", "pw-official");
    const otherToken = await login("weber", "pw-weber");
    expect((await matrix("GET", "/_matrix/client/v3/account/whoami", otherToken))["user_id"]).toBe(otherId);

    roomId = String(
      (
        await matrix("POST", "/_matrix/client/v3/createRoom", officialToken, {
          name: "Lage",
          preset: "private_chat",
        })
      )["room_id"],
    );
    await matrix("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, officialToken, {
      user_id: otherId,
    });
    await matrix("POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, otherToken, {});

    await matrix(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`,
      officialToken,
      { msgtype: "m.text", body: "Lagebesprechung um 14 Uhr" },
    );
    const heard = await syncUntil(otherToken, roomId, "Lagebesprechung um 14 Uhr");
    expect(heard.sender).toBe(officialId);

    await matrix(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t2`,
      otherToken,
      {
        msgtype: "m.text",
        body: "Verstanden",
      },
    );
    expect((await syncUntil(officialToken, roomId, "Verstanden")).sender).toBe(otherId);
  });

  it("Synapse harness - restart() keeps the port, the users, their tokens and the room", async () => {
    if (synapse === undefined || roomId === "") return;
    const baseUrl = synapse.baseUrl;
    await synapse.restart();
    expect(synapse.baseUrl).toBe(baseUrl);

    // A token from before the restart still works, and so does the password.
    expect((await matrix("GET", "/_matrix/client/v3/account/whoami", officialToken))["user_id"]).toBe(
      officialId,
    );
    const otherToken = await login("weber", "pw-weber");
    const joined = (await matrix("GET", "/_matrix/client/v3/joined_rooms", otherToken))["joined_rooms"];
    expect(joined).toContain(roomId);
    const history = (await matrix(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`,
      otherToken,
    )) as { chunk: TimelineEvent[] };
    expect(history.chunk.map((event) => event.content.body)).toContain("Lagebesprechung um 14 Uhr");

    await matrix(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t3`,
      officialToken,
      {
        msgtype: "m.text",
        body: "Nach dem Neustart",
      },
    );
    expect((await syncUntil(otherToken, roomId, "Nach dem Neustart")).sender).toBe(officialId);
  });

  it("Synapse harness - an application service registration given to start() is accepted", async () => {
    if (synapse === undefined) return;
    // Synapse knows the AS token only from the registration: it answers for the AS's sender.
    expect((await matrix("GET", "/_matrix/client/v3/account/whoami", asToken))["user_id"]).toBe(
      "@fedgate:tchap.localhost",
    );
    // The AS may create users in its exclusive namespace, the way the bridge makes its puppets.
    const puppet = await matrix("POST", "/_matrix/client/v3/register", asToken, {
      type: "m.login.application_service",
      username: "fedgate_xmpp_weber",
    });
    expect(puppet["user_id"]).toBe("@fedgate_xmpp_weber:tchap.localhost");
    // …and only there: the namespace in the registration is the one Synapse enforces.
    await expect(
      matrix("POST", "/_matrix/client/v3/register", asToken, {
        type: "m.login.application_service",
        username: "weber_impostor",
      }),
    ).rejects.toThrow(/M_EXCLUSIVE/);
  });
});
