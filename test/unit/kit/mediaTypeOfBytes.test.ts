/**
 * A file's type from its bytes: what a declared type becomes when the bytes bear it out, contradict it, or
 * lack the signature it has.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { mediaTypeOfBytes, SIGNATURE_BYTES } from "../../../bridges/kit/mediaTypeOfBytes.js";
import { sampleFile } from "../../helpers/fileServer.js";

const DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/** A zip archive with one stored entry `name` holding `bytes`, as zip files are laid out (local header first). */
function zipOf(name: string, bytes: Buffer): Buffer {
  const fileName = Buffer.from(name);
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(20, 4);
  header.writeUInt32LE(bytes.length, 18);
  header.writeUInt32LE(bytes.length, 22);
  header.writeUInt16LE(fileName.length, 26);
  return Buffer.concat([header, fileName, bytes]);
}

describe("mediaTypeOfBytes", () => {
  it("media type - keeps a declared type the bytes bear out", async () => {
    expect(await mediaTypeOfBytes("image/png", sampleFile("png", 500))).toBe("image/png");
    expect(await mediaTypeOfBytes("application/pdf", sampleFile("pdf", 500))).toBe("application/pdf");
  });

  it("media type - a declared type the bytes contradict becomes what they are", async () => {
    expect(await mediaTypeOfBytes("image/png", sampleFile("exe", 500))).toBe("application/x-msdownload");
    expect(await mediaTypeOfBytes("text/plain", sampleFile("exe", 500))).toBe("application/x-msdownload");
    expect(await mediaTypeOfBytes("application/octet-stream", sampleFile("pdf", 500))).toBe(
      "application/pdf",
    );
    // A sender's spelling becomes the registered one.
    expect(await mediaTypeOfBytes("image/jpg", sampleFile("jpeg", 500))).toBe("image/jpeg");
  });

  it("media type - a declared type with a signature the bytes lack becomes application/octet-stream", async () => {
    for (const declared of ["image/png", "application/pdf", "image/jpeg", "video/mp4"])
      expect(await mediaTypeOfBytes(declared, randomBytes(2000)), declared).toBe("application/octet-stream");
    expect(await mediaTypeOfBytes("image/png", Buffer.alloc(0))).toBe("application/octet-stream");
  });

  it("media type - bytes without a signature keep a declared type that has none", async () => {
    expect(await mediaTypeOfBytes("text/plain", Buffer.from("Lage ruhig"))).toBe("text/plain");
    expect(await mediaTypeOfBytes("text/csv", Buffer.from("a;b\n1;2\n"))).toBe("text/csv");
    expect(await mediaTypeOfBytes("application/octet-stream", randomBytes(100))).toBe(
      "application/octet-stream",
    );
    // XML needs no declaration, nor an SVG.
    expect(await mediaTypeOfBytes("application/xml", Buffer.from("<lage/>"))).toBe("application/xml");
    expect(await mediaTypeOfBytes("image/svg+xml", Buffer.from("<svg/>"))).toBe("image/svg+xml");
  });

  it("media type - a declared format inside the container the bytes show is kept", async () => {
    const svg = Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>');
    expect(await mediaTypeOfBytes("image/svg+xml", svg)).toBe("image/svg+xml");
    // A zip whose first entry does not tell what it holds: a .docx may be laid out that way.
    const zip = zipOf("word/media/image1.bin", randomBytes(100));
    expect(await mediaTypeOfBytes(DOCX, zip)).toBe(DOCX);
    // …but a picture is no zip.
    expect(await mediaTypeOfBytes("image/png", zip)).toBe("application/zip");
  });

  it("media type - reads the same start of a file, whatever follows it", async () => {
    const start = sampleFile("png", SIGNATURE_BYTES);
    const longer = Buffer.concat([start, sampleFile("exe", 5000)]);
    expect(await mediaTypeOfBytes("image/png", longer)).toBe(await mediaTypeOfBytes("image/png", start));
  });
});
