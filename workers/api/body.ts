// Request bodies: JSON, YAML, or Kubernetes protobuf (what kubectl's typed clients send),
// with the size limit. Every route that reads a body goes through here.

import type { Context } from "hono";
import { parse as parseYAML } from "yaml";
import { badRequest, tooLarge, unsupportedMediaType } from "../shared/errors.ts";
import { decodeProtobufObject, PROTOBUF_CONTENT_TYPE } from "./protobuf.ts";

/** Largest request body accepted (etcd's default value limit is 1.5 MiB). */
export const MAX_BODY_BYTES = 1.5 * 1024 * 1024;

export interface BodyOptions {
  /** A patch document: JSON only (the patch type comes from the Content-Type). */
  patch?: boolean;
  /** An empty body is allowed (DELETE options): returns undefined. */
  optional?: boolean;
  /** A server-side apply configuration: YAML (JSON is YAML too). */
  apply?: boolean;
}

export async function readBody(c: Context<any>, opts: BodyOptions = {}): Promise<unknown> {
  const len = Number(c.req.header("content-length") ?? "0");
  if (len > MAX_BODY_BYTES) throw tooLarge(`the request body is too large: ${len} bytes, limit ${MAX_BODY_BYTES}`);
  const buf = await c.req.arrayBuffer();
  if (buf.byteLength > MAX_BODY_BYTES) throw tooLarge(`the request body is too large: ${buf.byteLength} bytes, limit ${MAX_BODY_BYTES}`);
  if (buf.byteLength === 0) {
    if (opts.optional) return undefined;
    throw badRequest("the request body is empty");
  }
  const ct = (c.req.header("content-type") ?? "application/json").split(";")[0].trim().toLowerCase();
  if (!opts.patch && ct === PROTOBUF_CONTENT_TYPE) return decodeProtobufObject(new Uint8Array(buf));
  const text = new TextDecoder().decode(buf);
  if (opts.apply) {
    try {
      return parseYAML(text, { maxAliasCount: 100 });
    } catch (e) {
      throw badRequest(`the applied configuration is not valid YAML: ${(e as Error).message}`);
    }
  }
  if (opts.patch) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw badRequest(`the patch is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (ct === "application/json" || ct === "" || ct === "*/*") {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw badRequest(`the request body is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (ct === "application/yaml" || ct === "application/x-yaml" || ct === "text/yaml") {
    try {
      return parseYAML(text, { maxAliasCount: 100 });
    } catch (e) {
      throw badRequest(`the request body is not valid YAML: ${(e as Error).message}`);
    }
  }
  throw unsupportedMediaType(ct);
}
