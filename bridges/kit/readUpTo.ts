import type { Dispatcher } from "undici";

/**
 * Reads a response body whole if it is at most `limit` bytes; undefined (and the body destroyed, which
 * closes the connection) when it is larger, by its declared length or by what arrives.
 */
export async function readUpTo(
  body: Dispatcher.ResponseData["body"],
  limit: number,
  declared?: string | string[],
): Promise<Buffer | undefined> {
  // undici's body emits an error when destroyed unread after it arrived whole; unheard, it would end the
  // process. The loop below still sees errors.
  body.on("error", () => undefined);
  if (typeof declared === "string" && Number(declared) > limit) {
    body.destroy();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Leaving the loop destroys the body.
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
