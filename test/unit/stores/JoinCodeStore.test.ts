import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { PermanentError, TransientError } from "../../../schemas/contract/errors.js";
import { JoinCodeStore, type JoinCodeGrant } from "../../../gateway/platform/stores/JoinCodeStore.js";

const log = pino({ level: "silent" });
const room = { network: "matrix", instance: "tchap", conversation: "!lage:tchap.localhost" };
const request = { network: "matrix", instance: "tchap", agency: "dinum-mi" };

function clock(start = Date.parse("2030-01-01T00:00:00Z")) {
  const time = { now: start };
  return { time, now: () => time.now };
}

async function refusalOf(promise: Promise<unknown>): Promise<PermanentError> {
  const error = await promise.then(
    () => {
      throw new Error("the code was accepted");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PermanentError);
  expect(error).toMatchObject({ code: "FG_JOIN_CODE_INVALID" });
  return error as PermanentError;
}

/** A bucket whose reads wait until `readers` reads are under way: both replicas see the unused code. */
class RacingKeyValue extends MemoryKeyValue {
  readers = 0;
  private waiting: (() => void)[] = [];

  override async get(key: string): ReturnType<MemoryKeyValue["get"]> {
    const entry = await super.get(key);
    if (this.readers === 0) return entry;
    await new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      if (this.waiting.length === this.readers) for (const go of this.waiting.splice(0)) go();
    });
    return entry;
  }
}

const granted = (grant: JoinCodeGrant) => Promise.resolve(grant);

describe("JoinCodeStore - one-time codes to join a link", () => {
  it("JoinCodeStore - a code is high-entropy, stored only as a digest, and grants its link and endpoint once", async () => {
    const kv = new MemoryKeyValue();
    const store = new JoinCodeStore(kv, log);
    const issued = await store.issue("grenze", { ...request, ttlSeconds: 600 });
    expect(issued.code).toMatch(/^fgj_[A-Za-z0-9_-]{32}$/);
    expect(issued).toMatchObject({ linkId: "grenze", agency: "dinum-mi", network: "matrix" });
    expect(Date.parse(issued.expiresAt) - Date.parse(issued.issuedAt)).toBe(600_000);
    const keys = await kv.keys();
    expect(keys).toHaveLength(1);
    const stored = Buffer.from((await kv.get(keys[0] ?? ""))?.value ?? []).toString();
    for (const text of [keys[0] ?? "", stored]) expect(text).not.toContain(issued.code.slice(4));
    expect((await store.issue("grenze", request)).code).not.toBe(issued.code);

    const grant = await store.redeem(issued.code, room, granted);
    expect(grant).toMatchObject({ linkId: "grenze", agency: "dinum-mi", codeId: issued.codeId });
    const again = await refusalOf(store.redeem(issued.code, room, granted));
    expect(again.detail).toMatchObject({ reason: "used" });
  });

  it("JoinCodeStore - every refusal reads the same to the person who typed the code", async () => {
    const { time, now } = clock();
    const store = new JoinCodeStore(new MemoryKeyValue(), log, now);
    const expiring = await store.issue("grenze", { ...request, ttlSeconds: 60 });
    const bound = await store.issue("grenze", { ...request, conversation: "!other:tchap.localhost" });
    const xmpp = await store.issue("grenze", { ...request, network: "xmpp", instance: "bpol" });
    const reasons: Record<string, Promise<unknown>> = {
      malformed: store.redeem("grenze", room, granted),
      unknown: store.redeem(`fgj_${"A".repeat(32)}`, room, granted),
      "other-conversation": store.redeem(bound.code, room, granted),
    };
    const messages = new Set<string>();
    for (const [reason, attempt] of Object.entries(reasons)) {
      const error = await refusalOf(attempt);
      expect(error.detail).toMatchObject({ reason });
      messages.add(error.message);
    }
    expect((await refusalOf(store.redeem(xmpp.code, room, granted))).detail).toMatchObject({
      reason: "other-conversation",
    });
    time.now += 60_000;
    const expired = await refusalOf(store.redeem(expiring.code, room, granted));
    expect(expired.detail).toMatchObject({ reason: "expired" });
    messages.add(expired.message);
    expect(messages.size).toBe(1);
    // A code bound to a conversation was not used up by the wrong one.
    expect(
      await store.redeem(bound.code, { ...room, conversation: "!other:tchap.localhost" }, granted),
    ).toMatchObject({ conversation: "!other:tchap.localhost" });
  });

  it("JoinCodeStore - two replicas redeeming one code at once: one wins", async () => {
    const kv = new RacingKeyValue();
    const issued = await new JoinCodeStore(kv, log).issue("grenze", request);
    kv.readers = 2;
    const used: string[] = [];
    const outcomes = await Promise.allSettled(
      ["!a:tchap.localhost", "!b:tchap.localhost"].map((conversation) =>
        new JoinCodeStore(kv, log).redeem(issued.code, { ...room, conversation }, () => {
          used.push(conversation);
          return Promise.resolve();
        }),
      ),
    );
    expect(used).toHaveLength(1);
    const lost = outcomes.filter((o) => o.status === "rejected");
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({
      code: "FG_JOIN_CODE_INVALID",
      detail: { reason: "used" },
    });
  });

  it("JoinCodeStore - a code whose use fails is given back", async () => {
    const store = new JoinCodeStore(new MemoryKeyValue(), log);
    const issued = await store.issue("grenze", request);
    const failure = new TransientError("FG_STORE_FAILED", "bus away");
    await expect(store.redeem(issued.code, room, () => Promise.reject(failure))).rejects.toBe(failure);
    expect(await store.redeem(issued.code, room, granted)).toMatchObject({ linkId: "grenze" });
  });

  it("JoinCodeStore - a lifetime outside a minute to a day is refused", async () => {
    const store = new JoinCodeStore(new MemoryKeyValue(), log);
    for (const ttlSeconds of [0, 59, 86_401, 1.5])
      await expect(store.issue("grenze", { ...request, ttlSeconds })).rejects.toMatchObject({
        code: "FG_REQUEST_INVALID",
      });
  });
});
