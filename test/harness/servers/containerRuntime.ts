/**
 * FEDGATE_SERVERS=containers: each server in a container of the locally built image (serverImage.ts),
 * through testcontainers, on the engine it finds (DOCKER_HOST, else /var/run/docker.sock). The container
 * shares the host's network and sees the server's folders at their host paths, as the host's user, so the
 * launchers' configs, ports and readiness checks are the ones of the Debian-package path.
 */
import type { Readable } from "node:stream";
import { GenericContainer, getContainerRuntimeClient, ImageName } from "testcontainers";
import type { ContainerRuntimeClient, StartedTestContainer } from "testcontainers";
import { PermanentError } from "../../../schemas/contract/errors.js";
import type { ServerCommand, ServerHandle, ServerRuntime } from "./serverRuntime.js";
import { imageEnv, imageFor, SERVER_IMAGE_BUILD } from "./serverImage.js";

/** Pulling, creating and starting a container of a local image; the server's own start is checked after. */
const CONTAINER_START_TIMEOUT_MS = 60_000;

/** No engine answers where testcontainers looks: names where it looked. */
export class ContainerEngineUnavailableError extends PermanentError {
  constructor(
    readonly engine: string,
    cause: unknown,
  ) {
    super(
      "FG_SERVER_START_FAILED",
      `FEDGATE_SERVERS=containers, but no container engine answers at ${engine}: start Docker, or ` +
        `Podman's Docker-compatible service (scripts/containers.sh does), or set FEDGATE_SERVERS=packages ` +
        `(${(cause as Error).message})`,
      { cause, detail: { engine } },
    );
  }
}

/** Where testcontainers looks for an engine: DOCKER_HOST first, then Docker's socket. */
export function engineLocation(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env["DOCKER_HOST"];
  return configured === undefined || configured === ""
    ? "/var/run/docker.sock (DOCKER_HOST unset)"
    : `${configured} (DOCKER_HOST) or /var/run/docker.sock`;
}

/** The engine testcontainers finds (`find`), or the error that says where none answered. */
export async function connectEngine(
  find: () => Promise<ContainerRuntimeClient> = getContainerRuntimeClient,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ContainerRuntimeClient> {
  try {
    return await find();
  } catch (error) {
    throw new ContainerEngineUnavailableError(engineLocation(env), error);
  }
}

/** How a server's command runs in a container: the parts that make it the host path's twin. */
export interface ContainerSpec {
  image: string;
  command: string[];
  /** The host's network: the server binds the 127.0.0.1 ports its config names, as on the host. */
  networkMode: "host";
  /** Each folder at its own path. */
  bindMounts: { source: string; target: string; mode: "rw" }[];
  /** The host's user, so that what the server writes in the folders is ours to read and remove. */
  user: string;
  environment: Record<string, string>;
}

export function containerSpec(
  command: ServerCommand,
  user = `${String(process.getuid?.() ?? 0)}:${String(process.getgid?.() ?? 0)}`,
): ContainerSpec {
  for (const folder of command.folders)
    if (!folder.startsWith("/"))
      throw new PermanentError(
        "FG_SERVER_START_FAILED",
        `${command.binary}: folder ${folder} is not absolute`,
      );
  return {
    image: imageFor(command.package),
    command: [command.binary, ...command.args],
    networkMode: "host",
    bindMounts: [...new Set(command.folders)].map((folder) => ({
      source: folder,
      target: folder,
      mode: "rw",
    })),
    user,
    environment: imageEnv,
  };
}

let client: Promise<ContainerRuntimeClient> | undefined;
/** Images found in the engine; one missing is looked for again, as it may be built meanwhile. */
const found = new Set<string>();

/** The engine, found once, with `image`, so that a missing image says how to build it. */
async function engine(image?: string): Promise<ContainerRuntimeClient> {
  client ??= connectEngine();
  // A failure is not kept: the engine may be started before the next server starts.
  client.catch(() => (client = undefined));
  const docker = await client;
  if (image !== undefined && !found.has(image)) {
    if (!(await docker.image.exists(ImageName.fromString(image))))
      throw new PermanentError(
        "FG_SERVER_START_FAILED",
        `FEDGATE_SERVERS=containers needs the image ${image}, which this engine does not have: ` +
          `build it with ${SERVER_IMAGE_BUILD}`,
      );
    found.add(image);
  }
  return docker;
}

async function startContainer(command: ServerCommand): Promise<StartedTestContainer> {
  const spec = containerSpec(command);
  await engine(spec.image);
  return new GenericContainer(spec.image)
    .withCommand(spec.command)
    .withNetworkMode(spec.networkMode)
    .withBindMounts(spec.bindMounts)
    .withUser(spec.user)
    .withEnvironment(spec.environment)
    .withStartupTimeout(CONTAINER_START_TIMEOUT_MS)
    .start();
}

/** A server in a container: PID 1 there, so signals to the container are signals to the server. */
class ContainerServer implements ServerHandle {
  readonly exited: Promise<string>;

  constructor(
    name: string,
    private readonly started: StartedTestContainer,
    private readonly docker: ContainerRuntimeClient,
  ) {
    this.exited = (docker.container.getById(started.getId()).wait() as Promise<{ StatusCode?: number }>).then(
      (status) =>
        `${name} exited with ${String(status.StatusCode)} (container ${started.getId().slice(0, 12)})`,
      (error: unknown) => `${name}'s container is gone: ${(error as Error).message}`,
    );
  }

  /** The container's log from its start; a log that cannot be read says so in what the server printed. */
  onOutput(listener: (text: string) => void): void {
    this.started.logs().then(
      (stream: Readable) => stream.on("data", (chunk) => listener(String(chunk))),
      (error: unknown) => listener(`(the container's log cannot be read: ${(error as Error).message})\n`),
    );
  }

  async signal(signal: NodeJS.Signals): Promise<void> {
    await this.docker.container.getById(this.started.getId()).kill({ signal });
  }

  /** `docker stop` sends SIGTERM and kills after the timeout; then the container is removed. */
  async stop(timeoutMs: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (signal !== "SIGTERM") await this.signal(signal).catch(() => undefined);
    await this.started.stop({ timeout: timeoutMs, remove: true });
  }
}

/** Everything a container printed until it ended. */
function printed(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    stream.on("data", (chunk) => (output += String(chunk)));
    stream.once("end", () => resolve(output));
    stream.once("error", reject);
  });
}

export const containerRuntime: ServerRuntime = {
  kind: "containers",
  async start(name, command) {
    const started = await startContainer(command);
    return new ContainerServer(name, started, await engine());
  },
  async run(command) {
    const started = await startContainer(command);
    try {
      const status = (await (await engine()).container.getById(started.getId()).wait()) as {
        StatusCode?: number;
      };
      return { code: status.StatusCode ?? null, output: await printed(await started.logs()) };
    } finally {
      await started.stop({ remove: true });
    }
  },
};
