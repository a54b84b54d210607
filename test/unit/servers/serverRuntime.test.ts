import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../schemas/contract/errors.js";
import { scratchDir } from "../../helpers/scratchDir.js";
import { startOrSkip } from "../../helpers/servers.js";
import {
  connectEngine,
  containerSpec,
  ContainerEngineUnavailableError,
  engineLocation,
} from "../../harness/servers/containerRuntime.js";
import { foldersNamedIn } from "../../harness/servers/LocalNatsServer.js";
import { SERVER_IMAGE, SYNAPSE_IMAGE } from "../../harness/servers/serverImage.js";
import {
  packagesRuntime,
  serverRuntime,
  serverRuntimeKind,
  type ServerCommand,
} from "../../harness/servers/serverRuntime.js";

const nats: ServerCommand = {
  package: "nats-server",
  binary: "nats-server",
  args: ["-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/tmp/fedgate-nats-x"],
  folders: ["/tmp/fedgate-nats-x", "/tmp/fedgate-nats-x"],
};

describe("server runtime", () => {
  it("serverRuntimeKind - unset or empty FEDGATE_SERVERS is the Debian packages' path", () => {
    expect(serverRuntimeKind({})).toBe("packages");
    expect(serverRuntimeKind({ FEDGATE_SERVERS: "" })).toBe("packages");
    expect(serverRuntimeKind({ FEDGATE_SERVERS: "packages" })).toBe("packages");
    expect(serverRuntimeKind({ FEDGATE_SERVERS: "containers" })).toBe("containers");
  });

  it("serverRuntimeKind - any other value is a config error that names FEDGATE_SERVERS", () => {
    let thrown: unknown;
    try {
      serverRuntimeKind({ FEDGATE_SERVERS: "docker" });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).code).toBe("FG_CONFIG_INVALID");
    expect((thrown as ConfigError).pointer).toBe("FEDGATE_SERVERS");
    expect((thrown as ConfigError).message).toContain('"docker"');
  });

  it("startOrSkip - a wrong FEDGATE_SERVERS fails the tests instead of skipping them", async () => {
    const started = startOrSkip("nats-server", () => serverRuntime({ FEDGATE_SERVERS: "container" }));
    await expect(started).rejects.toBeInstanceOf(ConfigError);
  });

  it("serverRuntime - the default runs the servers from Debian's packages", async () => {
    expect(await serverRuntime({})).toBe(packagesRuntime);
    expect((await serverRuntime({ FEDGATE_SERVERS: "containers" })).kind).toBe("containers");
  });

  it("containerSpec - the host path's command line, on the host's network, with each folder at its own path", () => {
    const { environment, ...spec } = containerSpec(nats, "1000:1000");
    expect(spec).toEqual({
      image: SERVER_IMAGE,
      command: ["nats-server", "-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/tmp/fedgate-nats-x"],
      networkMode: "host",
      bindMounts: [{ source: "/tmp/fedgate-nats-x", target: "/tmp/fedgate-nats-x", mode: "rw" }],
      user: "1000:1000",
    });
    // An imported tree has no environment: the binary is found on this PATH.
    expect(environment["PATH"]?.split(":")).toContain("/usr/sbin");
    // Synapse runs from the image of its chroot, the others from the Debian 12 one.
    expect(containerSpec({ ...nats, package: "matrix-synapse" }).image).toBe(SYNAPSE_IMAGE);
    // By default, the user running the tests, so that what the server writes is theirs to remove.
    expect(containerSpec(nats).user).toBe(`${String(process.getuid?.())}:${String(process.getgid?.())}`);
  });

  it("containerSpec - a relative folder is refused: the container would not see it where the config says", () => {
    expect(() => containerSpec({ ...nats, folders: ["data"] })).toThrow(/folder data is not absolute/);
  });

  it("connectEngine - with no engine where testcontainers looks, a typed error names where that was", async () => {
    const notFound = new Error("Could not find a working container runtime strategy");
    const failure = await connectEngine(() => Promise.reject(notFound), {
      DOCKER_HOST: "unix:///run/nothing.sock",
    }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ContainerEngineUnavailableError);
    const unavailable = failure as ContainerEngineUnavailableError;
    expect(unavailable.code).toBe("FG_SERVER_START_FAILED");
    expect(unavailable.engine).toBe("unix:///run/nothing.sock (DOCKER_HOST) or /var/run/docker.sock");
    expect(unavailable.message).toContain("FEDGATE_SERVERS=containers");
    expect(unavailable.message).toContain("unix:///run/nothing.sock");
    expect(unavailable.cause).toBe(notFound);
    expect(engineLocation({})).toBe("/var/run/docker.sock (DOCKER_HOST unset)");
  });

  it("packagesRuntime - a server's output, a stop that kills what ignores SIGTERM, and why it ended", async () => {
    const server = await packagesRuntime.start("stubborn", {
      package: "dash",
      binary: "sh",
      args: ["-c", "trap '' TERM; echo serving; sleep 30"],
      folders: [],
    });
    let output = "";
    await new Promise<void>((resolve) =>
      server.onOutput((text) => {
        output += text;
        if (output.includes("serving")) resolve();
      }),
    );
    const started = Date.now();
    await server.stop(300);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await server.exited).toBe("stubborn exited with SIGKILL");
  });

  it("foldersNamedIn - a nats-server config's TLS files are in folders the container must see", async () => {
    const dir = await scratchDir("nats-config");
    await mkdir(join(dir, "keys"));
    const config = JSON.stringify({
      leafnodes: {
        tls: {
          cert_file: join(dir, "keys", "leafnode.pem"),
          key_file: join(dir, "keys", "leafnode.key"),
          ca_file: join(dir, "ca.pem"),
        },
      },
      // Not folders of ours: the root, and one that does not exist.
      accounts: { "/x": {}, other: { note: "/nonexistent-fedgate/file" } },
    });
    expect((await foldersNamedIn(config)).sort()).toEqual([dir, join(dir, "keys")].sort());
  });
});
