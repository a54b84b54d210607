/**
 * The commands an issuing authority and a partner's operator run: a key, a manifest signed with it, checked
 * and shown on the other side, and refused once changed or when checked against another authority.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { schemaDir } from "../../../schemas/contract/schemas.js";
import { runFedgate } from "../../helpers/processes.js";
import { scratchDir } from "../../helpers/scratchDir.js";

async function fedgate(...args: string[]): Promise<{ code: number | null; output: string }> {
  const run = runFedgate(args);
  const code = await run.exited;
  return { code, output: run.output() };
}

/** `fedgate federation manifest verify` of `manifest` against one authority's public key. */
function verify(manifest: string, authority: string): Promise<{ code: number | null; output: string }> {
  return fedgate("federation", "manifest", "verify", "--manifest", manifest, "--authority", authority);
}

describe("fedgate federation - keys and partner manifests", () => {
  let dir = "";
  const example = join(schemaDir, "examples", "manifest-fr.yaml");

  beforeAll(async () => {
    dir = await scratchDir("manifest");
  }, 30_000);

  it("fedgate federation - an authority's key signs a manifest the partner verifies; changed, or checked against another authority, it is refused", async () => {
    const generated = await fedgate("federation", "key", "generate", "--out", join(dir, "authority-fr"));
    expect(generated.code, generated.output).toBe(0);
    expect(generated.output).toMatch(/key id [A-Za-z0-9_-]{22}/);
    // The private key is readable by its owner only, and never replaced by a second generate.
    expect((await stat(join(dir, "authority-fr.key"))).mode & 0o777).toBe(0o600);
    const again = await fedgate("federation", "key", "generate", "--out", join(dir, "authority-fr"));
    expect(again.code).toBe(1);
    expect(again.output).toContain("FG_KEY_INVALID");
    expect((await fedgate("federation", "key", "generate", "--out", join(dir, "someone-else"))).code).toBe(0);

    const signedFile = join(dir, "manifest-fr.signed.json");
    const signed = await fedgate(
      "federation",
      "manifest",
      "sign",
      "--manifest",
      example,
      "--key",
      join(dir, "authority-fr.key"),
      "--out",
      signedFile,
    );
    expect(signed.code, signed.output).toBe(0);

    const verified = await verify(signedFile, join(dir, "authority-fr.pub"));
    expect(verified.code, verified.output).toBe(0);
    expect(verified.output).toContain("valid: signed by key");
    expect(verified.output).toContain("dinum-mi: Ministère de l'Intérieur (FR), may receive FR-DR");

    const untrusted = await verify(signedFile, join(dir, "someone-else.pub"));
    expect(untrusted.code).toBe(1);
    expect(untrusted.output).toContain("FG_MANIFEST_UNTRUSTED");

    // The partner claims one more agency than its authority signed for.
    const document = JSON.parse(await readFile(signedFile, "utf8")) as { manifest: { agencies: unknown[] } };
    document.manifest.agencies.push({ id: "bpol", name: "Bundespolizei", country: "DE" });
    const tamperedFile = join(dir, "manifest-fr.tampered.json");
    await writeFile(tamperedFile, JSON.stringify(document));
    const tampered = await verify(tamperedFile, join(dir, "authority-fr.pub"));
    expect(tampered.code).toBe(1);
    expect(tampered.output).toContain("FG_MANIFEST_TAMPERED");

    const unsigned = await verify(example, join(dir, "authority-fr.pub"));
    expect(unsigned.code).toBe(1);
    expect(unsigned.output).toContain("FG_MANIFEST_UNSIGNED");

    const shown = await fedgate("federation", "manifest", "show", "--manifest", tamperedFile);
    expect(shown.code, shown.output).toBe(0);
    expect(shown.output).toContain("NOT VERIFIED");
    expect(shown.output).toContain("bpol: Bundespolizei (DE)");
  }, 120_000);
});
