/**
 * The image FEDGATE_SERVERS=containers runs nats-server and Prosody from: Debian 12 with the same packages
 * the host path installs, built locally (no registry is needed) as a debootstrap tree imported into the
 * engine, about 250 MB. Built next to the Synapse chroot, under the same kind of lock.
 *
 * Run directly (`npx tsx test/harness/servers/serverImage.ts`) it builds and imports the image
 * with the engine's command-line client (docker, else podman); with --if-missing only when the engine lacks
 * it, as scripts/containers.sh runs it.
 */
import { mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { findOnPath } from "./debianPackages.js";
import {
  buildDebianTree,
  chrootEnv,
  lock,
  progress,
  removeTree,
  runStep,
  synapseChrootDir,
} from "./matrix/buildSynapseChroot.js";

/** Bump the tag when the packages or the build change, so that an old image is not taken for this one. */
export const SERVER_IMAGE = "localhost/fedgate-servers:bookworm-1";

/** The Debian packages in the image: the servers the container path runs. */
export const SERVER_IMAGE_PACKAGES = ["nats-server", "prosody"];

/** How to build the image, for errors that find it missing. */
export const SERVER_IMAGE_BUILD = "npx tsx test/harness/servers/serverImage.ts";

/** The image has no environment of its own (an imported tree): commands run with this one. */
export const imageEnv: Record<string, string> = {
  PATH: chrootEnv["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: chrootEnv["LANG"] ?? "C.UTF-8",
};

/**
 * The engine's command-line client, which imports into the engine testcontainers then talks to: docker
 * follows DOCKER_HOST (Docker's or Podman's service alike); podman shares its storage with a local service.
 */
async function engineClient(): Promise<string> {
  for (const candidate of ["docker", "podman"]) {
    const found = await findOnPath(candidate);
    if (found !== undefined) return found;
  }
  throw new PermanentError("FG_SERVER_START_FAILED", "building the servers' image needs podman or docker");
}

/** Builds the tree, imports it as SERVER_IMAGE, and removes the tree. Needs root (debootstrap, chroot). */
export async function buildServerImage(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new PermanentError(
      "FG_SERVER_START_FAILED",
      `building ${SERVER_IMAGE} (debootstrap, chroot) needs root`,
    );
  const client = await engineClient();
  const parent = dirname(synapseChrootDir());
  await mkdir(parent, { recursive: true });
  const held = await lock(join(parent, ".fedgate-servers-image.lock"));
  const tree = join(parent, ".fedgate-servers-image.partial");
  try {
    const started = Date.now();
    progress(
      `servers image: building ${SERVER_IMAGE} (${SERVER_IMAGE_PACKAGES.join(", ")}; a minute or two)`,
    );
    await removeTree(tree);
    await buildDebianTree(tree, held.fd, "bookworm", SERVER_IMAGE_PACKAGES);
    await runStep(held.fd, `importing the tree as ${SERVER_IMAGE}`, "sh", [
      "-c",
      'tar -C "$1" --numeric-owner -c . | "$2" import - "$3"',
      "sh",
      tree,
      client,
      SERVER_IMAGE,
    ]);
    progress(`servers image: ready in ${String(Math.round((Date.now() - started) / 1000))} s`);
  } finally {
    await removeTree(tree);
    await held.close();
  }
}

/** Whether the engine testcontainers finds has the image. */
async function imageExists(): Promise<boolean> {
  const { getContainerRuntimeClient, ImageName } = await import("testcontainers");
  return (await getContainerRuntimeClient()).image.exists(ImageName.fromString(SERVER_IMAGE));
}

const invokedAs = process.argv[1];
if (invokedAs !== undefined && import.meta.url === pathToFileURL(resolve(invokedAs)).href) {
  try {
    if (process.argv.includes("--if-missing") && (await imageExists()))
      progress(`servers image: ${SERVER_IMAGE} is there`);
    else await buildServerImage();
  } catch (error) {
    process.stderr.write(`fedgate: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
