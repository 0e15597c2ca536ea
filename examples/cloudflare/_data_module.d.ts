// Type of a binary data import in a Cloudflare Worker (a Wrangler `Data` module): the file's
// bytes. Used through `// @ts-types` so that Deno type-checks the import without the file.
declare const data: ArrayBuffer;
export default data;
