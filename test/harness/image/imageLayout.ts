/**
 * Builds the file layout of the image as the Dockerfile describes it, without Docker: each stage is a folder,
 * COPY copies from the build context (minus .dockerignore) or from an earlier stage, RUN runs in the stage's
 * WORKDIR with the stage's ENV, and absolute paths in RUN point into the stage's folder. Enough of the
 * Dockerfile language for fedgate's own Dockerfile; anything else is refused, so a new instruction cannot be
 * skipped unseen.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, readFile } from "node:fs/promises";
import { isAbsolute, join, relative } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

interface Stage {
  name: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
}

export interface ImageLayout {
  /** The final stage's root folder, standing for the image's "/". */
  root: string;
  /** The final stage's WORKDIR inside root. */
  workdir: string;
  env: Record<string, string>;
  /** The ENTRYPOINT, its first word resolved inside root. */
  entrypoint: string[];
}

/** The Dockerfile's instructions, continuation lines joined and comments dropped. */
function instructions(text: string): { keyword: string; rest: string }[] {
  return text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [keyword = "", ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), rest: rest.join(" ") };
    });
}

function ignoredBy(patterns: string[]): (path: string) => boolean {
  return (path) => patterns.some((p) => path === p || path.startsWith(`${p}/`));
}

/** Builds the layout of `dockerfile` (its context is its folder) under `outDir`, step by step. */
export async function buildImageLayout(
  dockerfile: string,
  outDir: string,
  progress: (line: string) => void = () => undefined,
): Promise<ImageLayout> {
  const context = join(dockerfile, "..");
  const ignore = ignoredBy(
    (await readFile(join(context, ".dockerignore"), "utf8").catch(() => ""))
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#")),
  );
  const stages: Stage[] = [];
  const inside = (stage: Stage, path: string): string =>
    isAbsolute(path) ? join(stage.root, path) : join(stage.root, stage.workdir, path);
  for (const { keyword, rest } of instructions(await readFile(dockerfile, "utf8"))) {
    if (keyword === "FROM") {
      const name = /\sAS\s+(\S+)$/i.exec(rest)?.[1] ?? String(stages.length);
      stages.push({ name, root: join(outDir, name), workdir: "/", env: {}, entrypoint: [] });
      await mkdir(join(outDir, name), { recursive: true });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new Error(`Dockerfile: ${keyword} before FROM`);
    progress(`${stage.name}: ${keyword} ${rest}`);
    switch (keyword) {
      case "WORKDIR":
        stage.workdir = rest;
        await mkdir(inside(stage, "."), { recursive: true });
        break;
      case "ENV": {
        const [key, ...value] = rest.split("=");
        stage.env[key ?? ""] = value.join("=");
        break;
      }
      case "COPY": {
        const words = rest.split(/\s+/);
        const from =
          words[0]?.startsWith("--from=") === true ? words.shift()?.slice("--from=".length) : undefined;
        const dest = words.pop() ?? ".";
        const source = from === undefined ? undefined : stages.find((s) => s.name === from);
        if (from !== undefined && source === undefined) throw new Error(`Dockerfile: no stage ${from}`);
        for (const src of words) {
          const origin = source === undefined ? join(context, src) : inside(source, src);
          const target = dest.endsWith("/")
            ? join(inside(stage, dest), src.split("/").at(-1) ?? src)
            : inside(stage, dest);
          await cp(origin, target, {
            recursive: true,
            verbatimSymlinks: true,
            filter: (path) => source !== undefined || !ignore(relative(context, path)),
          });
        }
        break;
      }
      case "RUN": {
        const command = rest.replace(
          /(^|\s)(\/[^\s;&|]+)/g,
          (_m, space: string, path: string) => space + join(stage.root, path),
        );
        await mkdir(join(stage.root, "usr/local/bin"), { recursive: true });
        await run("bash", ["-c", command], {
          cwd: inside(stage, "."),
          env: { ...process.env, ...stage.env },
          maxBuffer: 64 * 1024 * 1024,
        });
        break;
      }
      case "ENTRYPOINT":
        stage.entrypoint = JSON.parse(rest) as string[];
        break;
      case "USER":
      case "CMD":
        break;
      default:
        throw new Error(`Dockerfile: ${keyword} is not understood by the layout builder`);
    }
  }
  const image = stages.at(-1);
  if (image === undefined) throw new Error("Dockerfile: no stage");
  const [command = "", ...args] = image.entrypoint;
  return {
    root: image.root,
    workdir: inside(image, "."),
    env: image.env,
    entrypoint: [join(image.root, "usr/local/bin", command), ...args],
  };
}
