/**
 * Files: uploads in chunks (resumable.js fields on `file/upload`, or a context and 1-based chunks), the
 * keys that let a chat's members open an encrypted file, its metadata, and its download as raw bytes.
 * Bodies are stored as given; the server cannot open encrypted ones.
 */
import { randomBytes } from "node:crypto";
import { Refusal, type Form } from "./envelope.js";
import { RawFile, authed, type ApiContext, type ApiRequest, type Endpoint } from "./api.js";
import type { ChatType, StoredFile, Upload, User } from "./store.js";
import { fileView } from "./views.js";

const HEX = /^(?:[0-9a-f]{2})+$/i;

/** Where a file goes: a chat the uploader belongs to, or their personal folder. */
function folder(
  ctx: ApiContext,
  user: User,
  type: string,
  typeId: number,
): { folderType: ChatType | "personal"; typeId: number } {
  if (type === "personal") {
    if (typeId !== user.id) throw new Refusal("no_permission", "a personal folder is its owner's only");
    return { folderType: "personal", typeId };
  }
  if (type !== "channel" && type !== "conversation")
    throw new Refusal("invalid_values", "type must be channel, conversation or personal");
  ctx.store.memberChat(type, typeId, user.id);
  return { folderType: type, typeId };
}

function encryption(form: Form, ivField: string): { encrypted: boolean; e2eIv: string | null } {
  const encrypted = form.bool("encrypted");
  if (!encrypted) return { encrypted, e2eIv: null };
  const iv = form.requiredString(ivField);
  if (!HEX.test(iv)) throw new Refusal("invalid_values", `${ivField} must be hex`);
  return { encrypted, e2eIv: iv.toLowerCase() };
}

function checkSize(ctx: ApiContext, bytes: number): void {
  if (bytes > ctx.maxUploadBytes)
    throw new Refusal("file_too_large", `a file may have at most ${String(ctx.maxUploadBytes)} bytes`);
}

/** The one file part, named as the upload form names it. */
function part(request: ApiRequest, field: string): Buffer {
  const found = request.parts.find((p) => p.field === field);
  if (found === undefined)
    throw new Refusal("missing_values", `missing values, file part "${field}" required`);
  return found.bytes;
}

/** Stores one chunk; the file once the last is in, else undefined. */
function addChunk(
  ctx: ApiContext,
  key: string,
  upload: Upload,
  number: number,
  bytes: Buffer,
  declaredSize: number | undefined,
): StoredFile | undefined {
  if (number < 1 || number > upload.totalChunks)
    throw new Refusal("invalid_values", `chunk numbers run from 1 to ${String(upload.totalChunks)}`);
  if (declaredSize !== undefined && declaredSize !== bytes.length)
    throw new Refusal(
      "invalid_values",
      `the chunk has ${String(bytes.length)} bytes, not ${String(declaredSize)}`,
    );
  upload.chunks.set(number, bytes);
  let held = 0;
  for (const chunk of upload.chunks.values()) held += chunk.length;
  checkSize(ctx, held);
  if (held > upload.totalSize)
    throw new Refusal("invalid_values", `the chunks exceed the ${String(upload.totalSize)} bytes announced`);
  return ctx.store.completeUpload(key, upload) ? ctx.store.file(upload.fileId) : undefined;
}

function fileId(request: ApiRequest): number {
  const { form } = request;
  const query = request.query("id");
  if (query !== undefined && /^\d{1,15}$/.test(query)) return Number(query);
  const id = form.int("id") ?? form.int("file_id");
  if (id === undefined) throw new Refusal("missing_values", "missing values, id required");
  return id;
}

export const fileRoutes: Record<string, Endpoint> = {
  /** resumable.js: every chunk a multipart POST with a part named "file"; each answer has the file. */
  "file/upload": authed((request, ctx) => {
    const { form, user } = request;
    form.require(
      "resumableChunkNumber",
      "resumableTotalChunks",
      "resumableTotalSize",
      "resumableIdentifier",
      "resumableFilename",
      "type",
      "type_id",
    );
    const totalChunks = form.requiredInt("resumableTotalChunks");
    const totalSize = form.requiredInt("resumableTotalSize");
    if (totalChunks < 1 || totalSize < 0)
      throw new Refusal("invalid_values", "resumableTotalChunks and resumableTotalSize must be positive");
    checkSize(ctx, totalSize);
    const bytes = part(request, "file");
    const key = `resumable:${String(user.id)}:${form.requiredString("resumableIdentifier")}`;
    const place = folder(ctx, user, form.requiredString("type"), form.requiredInt("type_id"));
    const secret = encryption(form, "iv");
    const { upload, file } = ctx.store.upload(
      key,
      () => ({
        name: form.requiredString("resumableFilename"),
        mime: form.string("resumableType") ?? "application/octet-stream",
        ownerId: user.id,
        ...place,
        ...secret,
        width: form.int("media_width") ?? null,
        height: form.int("media_height") ?? null,
      }),
      totalChunks,
      totalSize,
    );
    const done = addChunk(
      ctx,
      key,
      upload,
      form.requiredInt("resumableChunkNumber"),
      bytes,
      form.int("resumableCurrentChunkSize"),
    );
    return { file: fileView(ctx, done ?? file, user.id) };
  }),

  "file/create_upload_context": authed(({ form, user }, ctx) => {
    form.require("filename", "filesize", "num_total_chunks", "folder_type", "folder_type_id");
    const totalChunks = form.requiredInt("num_total_chunks");
    const totalSize = form.requiredInt("filesize");
    if (totalChunks < 1 || totalSize < 0)
      throw new Refusal("invalid_values", "num_total_chunks and filesize must be positive");
    checkSize(ctx, totalSize);
    const place = folder(ctx, user, form.requiredString("folder_type"), form.requiredInt("folder_type_id"));
    const secret = encryption(form, form.has("e2e_iv") ? "e2e_iv" : "iv");
    const identifier = randomBytes(16).toString("hex");
    ctx.store.upload(
      `context:${identifier}`,
      () => ({
        name: form.requiredString("filename"),
        mime: form.string("mime") ?? "application/octet-stream",
        ownerId: user.id,
        ...place,
        ...secret,
        width: form.int("media_width") ?? null,
        height: form.int("media_height") ?? null,
      }),
      totalChunks,
      totalSize,
    );
    return { identifier };
  }),

  /** One chunk of a context, numbered from 1, in a part named "-"; the last one's answer has the file. */
  "file/upload_chunk": authed((request, ctx) => {
    const { form, user } = request;
    form.require("identifier", "current_chunk_number");
    const key = `context:${form.requiredString("identifier")}`;
    const upload = ctx.store.findUpload(key);
    if (upload === undefined) throw new Refusal("not_found", "there is no upload with that identifier");
    if (upload.ownerId !== user.id) throw new Refusal("no_permission", "the upload is someone else's");
    const number = form.requiredInt("current_chunk_number");
    const done = addChunk(ctx, key, upload, number, part(request, "-"), form.int("current_chunk_size"));
    return done === undefined
      ? { identifier: form.requiredString("identifier"), current_chunk_number: number }
      : { file: fileView(ctx, done, user.id) };
  }),

  /** The file's key for one chat, locked with that chat's key; replaces that chat's earlier one. */
  "security/set_file_access_key": authed(({ form, user }, ctx) => {
    form.require("file_id", "target", "target_id", "key", "iv");
    const file = ctx.store.readableFile(form.requiredInt("file_id"), user.id);
    const target = form.requiredString("target");
    if (target !== "channel" && target !== "conversation")
      throw new Refusal("invalid_values", "target must be channel or conversation");
    const chat = ctx.store.memberChat(target, form.requiredInt("target_id"), user.id);
    const key = form.requiredString("key");
    const iv = form.requiredString("iv");
    if (!HEX.test(key) || !HEX.test(iv)) throw new Refusal("invalid_values", "key and iv must be hex");
    file.keys = file.keys.filter((k) => !(k.type === chat.type && k.chatId === chat.id));
    file.keys.push({ type: chat.type, chatId: chat.id, key: key.toLowerCase(), iv: iv.toLowerCase() });
    return { success: true };
  }),

  "file/info": authed((request, ctx) => {
    const file = ctx.store.readableFile(fileId(request), request.user.id);
    return { file: fileView(ctx, file, request.user.id) };
  }),

  /** `?id=` in the query, the session in the body (form-encoded or multipart); the answer is the bytes. */
  "file/download": authed((request, ctx) => {
    const file = ctx.store.readableFile(fileId(request), request.user.id);
    file.timesDownloaded += 1;
    file.lastDownload = Math.floor(Date.now() / 1000);
    return new RawFile(file.bytes ?? Buffer.alloc(0), file.mime, file.name);
  }),
};
