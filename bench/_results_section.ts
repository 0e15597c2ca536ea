// Writes one benchmark's section at the end of bench/RESULTS.md, after the paper tables (which
// bench/paper_tables.ts regenerates while keeping these sections).
import { KEPT_SECTIONS } from "./paper_tables.ts";

/**
 * Replaces (or appends) the section whose first line is `heading` in bench/RESULTS.md.
 *
 * @param heading The section's `## …` line.
 * @param body The section's text after the heading.
 */
export async function writeResultsSection(heading: string, body: string): Promise<void> {
  const url = new URL("RESULTS.md", import.meta.url);
  let text = await Deno.readTextFile(url);
  if (!text.includes(KEPT_SECTIONS)) text = `${text.trimEnd()}\n\n${KEPT_SECTIONS}\n`;
  const start = text.indexOf(heading);
  if (start >= 0) {
    const next = text.indexOf("\n## ", start + heading.length);
    text = text.slice(0, start) + (next >= 0 ? text.slice(next + 1) : "");
  }
  await Deno.writeTextFile(url, `${text.trimEnd()}\n\n${heading}\n\n${body.trim()}\n`);
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "-q", url.pathname] }).output();
}
