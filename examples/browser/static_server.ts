/**
 * A small static file server for the browser example, on `Deno.serve`: GET and HEAD of the files
 * in one folder, with Content-Type and Content-Length, nothing cached. It can send chosen files
 * slowly, in small chunks, so that a page on the same machine sees its download progress and
 * its decoder can be seen to work while bytes are still arriving.
 *
 * @module
 */

/** Options of {@linkcode serveStatic}. */
export interface StaticServerOptions {
  /** Port on 127.0.0.1; default 0, a free port chosen by the system. */
  readonly port?: number;
  /**
   * Send files whose name ends with `suffix` in chunks of `chunkBytes`, `delayMs` apart (still
   * with their Content-Length).
   */
  readonly trickle?: {
    readonly suffix: string;
    readonly chunkBytes: number;
    readonly delayMs: number;
  };
}

/** A running {@linkcode serveStatic} server. */
export interface StaticServer {
  /** Its address, e.g. `http://127.0.0.1:41234/`. */
  readonly url: string;
  /** Every request answered so far: path and status. */
  readonly requests: readonly { readonly path: string; readonly status: number }[];
  /** Stops the server, waiting for open requests to finish. */
  close(): Promise<void>;
}

const TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  json: "application/json",
  // WebAssembly.instantiateStreaming() insists on this type.
  wasm: "application/wasm",
  png: "image/png",
};

/**
 * Serves a folder on 127.0.0.1.
 *
 * @param dir The folder; `/` is its `index.html`.
 * @param options Port and slow files.
 * @returns The running server.
 */
export function serveStatic(dir: string, options: StaticServerOptions = {}): StaticServer {
  const requests: { path: string; status: number }[] = [];
  const answer = (path: string, response: Response) => {
    requests.push({ path, status: response.status });
    return response;
  };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    onListen: () => {},
  }, async (request) => {
    const url = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return answer(
        url.pathname,
        new Response(null, { status: 405, headers: { allow: "GET, HEAD" } }),
      );
    }
    let name: string;
    try {
      name = decodeURIComponent(url.pathname);
    } catch {
      return answer(url.pathname, new Response("Bad path", { status: 400 }));
    }
    if (name.endsWith("/")) name += "index.html";
    // URL parsing has resolved "." and ".." already; what is left must stay inside the folder.
    if (name.split("/").some((p) => p === ".." || p.includes("\\")) || name.includes("\0")) {
      return answer(url.pathname, new Response("Not found", { status: 404 }));
    }
    let data: Uint8Array<ArrayBuffer>;
    try {
      data = await Deno.readFile(`${dir}${name}`);
    } catch {
      return answer(url.pathname, new Response("Not found", { status: 404 }));
    }
    const extension = name.slice(name.lastIndexOf(".") + 1);
    const headers = {
      "content-type": TYPES[extension] ?? "application/octet-stream",
      "content-length": String(data.length),
      "cache-control": "no-store",
    };
    if (request.method === "HEAD") return answer(url.pathname, new Response(null, { headers }));
    const trickle = options.trickle;
    const body = trickle && name.endsWith(trickle.suffix)
      ? slowly(data, trickle.chunkBytes, trickle.delayMs)
      : data;
    return answer(url.pathname, new Response(body, { headers }));
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    requests,
    close: () => server.shutdown(),
  };
}

function slowly(data: Uint8Array, chunkBytes: number, delayMs: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    async pull(controller) {
      if (at > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      controller.enqueue(data.slice(at, at + chunkBytes));
      at += chunkBytes;
      if (at >= data.length) controller.close();
    },
  });
}
