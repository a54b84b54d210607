/**
 * The images FEDGATE_SERVERS=containers runs the servers from, built locally (no registry is needed) and
 * imported into the engine: nats-server and Prosody from Debian 12 with the same packages the host path
 * installs, a debootstrap tree (about 270 MB) built next to the Synapse chroot under the same kind of lock;
 * Synapse from its Debian sid chroot as it is (about 550 MB).
 *
 * Run directly (`npx tsx test/harness/servers/serverImage.ts`) it builds and imports both with the engine's
 * command-line client (docker, else podman); with --if-missing only those the engine lacks, as
 * scripts/containers.sh runs it.
 */
import { mkdir } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { findOnPath } from "./debianPackages.js";
import {
  buildDebianTree,
  chrootEnv,
  ensureSynapseChroot,
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

/** Synapse's image: its Debian sid chroot (buildSynapseChroot.ts), imported as it is. */
export const SYNAPSE_IMAGE = "localhost/fedgate-synapse:sid-1";

/** The image a server of Debian package `pkg` runs from. */
export function imageFor(pkg: string): string {
  return pkg === "matrix-synapse" ? SYNAPSE_IMAGE : SERVER_IMAGE;
}

/** How to build the images, for errors that find one missing. */
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

/** Imports the tree at `dir` into the engine as `image`. */
async function importTree(lockFd: number, client: string, dir: string, image: string): Promise<void> {
  await runStep(lockFd, `importing ${dir} as ${image}`, "sh", [
    "-c",
    'tar -C "$1" --numeric-owner -c . | "$2" import - "$3"',
    "sh",
    dir,
    client,
    image,
  ]);
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
    await importTree(held.fd, client, tree, SERVER_IMAGE);
    progress(`servers image: ready in ${String(Math.round((Date.now() - started) / 1000))} s`);
  } finally {
    await removeTree(tree);
    await held.close();
  }
}

/** Imports Synapse's chroot, built first if needed, as SYNAPSE_IMAGE. */
export async function buildSynapseImage(): Promise<void> {
  const client = await engineClient();
  const chroot = await ensureSynapseChroot();
  // The chroot's own lock: no build replaces the tree while it is read.
  const held = await lock(join(dirname(chroot.dir), `.${basename(chroot.dir)}.lock`));
  try {
    await importTree(held.fd, client, chroot.dir, SYNAPSE_IMAGE);
  } finally {
    await held.close();
  }
}

/** Whether the engine testcontainers finds has `image`. */
async function imageExists(image: string): Promise<boolean> {
  const { getContainerRuntimeClient, ImageName } = await import("testcontainers");
  return (await getContainerRuntimeClient()).image.exists(ImageName.fromString(image));
}

const invokedAs = process.argv[1];
if (invokedAs !== undefined && import.meta.url === pathToFileURL(resolve(invokedAs)).href) {
  try {
    const ifMissing = process.argv.includes("--if-missing");
    for (const [image, build] of [
      [SERVER_IMAGE, buildServerImage],
      [SYNAPSE_IMAGE, buildSynapseImage],
    ] as const) {
      if (ifMissing && (await imageExists(image))) progress(`${image} is there`);
      else await build();
    }
  } catch (error) {
    process.stderr.write(`fedgate: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
