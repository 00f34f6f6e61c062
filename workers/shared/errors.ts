// Typed API errors. Every layer throws these; exactly one place (the hono onError in
// workers/api/errors.ts) turns them into a Kubernetes `Status` response. The store's
// RPC boundary carries them as plain `{ code, reason, message, details }` objects
// (see toWire / fromWire), because class identity does not survive Workers RPC.

import type { Status, StatusCause, StatusDetails } from "kubernetes-types/meta/v1";

export type StatusReason =
  | "BadRequest"
  | "Unauthorized"
  | "Forbidden"
  | "NotFound"
  | "MethodNotAllowed"
  | "NotAcceptable"
  | "AlreadyExists"
  | "Conflict"
  | "Gone"
  | "Expired"
  | "RequestEntityTooLarge"
  | "UnsupportedMediaType"
  | "Invalid"
  | "TooManyRequests"
  | "InternalError"
  | "Timeout"
  | "ServiceUnavailable";

export interface ErrorDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: StatusReason;
  readonly details: ErrorDetails;

  constructor(code: number, reason: StatusReason, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): Status {
    const details: StatusDetails = {};
    if (this.details.name !== undefined) details.name = this.details.name;
    if (this.details.group !== undefined) details.group = this.details.group;
    if (this.details.kind !== undefined) details.kind = this.details.kind;
    if (this.details.causes?.length) details.causes = this.details.causes;
    if (this.details.retryAfterSeconds !== undefined) details.retryAfterSeconds = this.details.retryAfterSeconds;
    const s: Status = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (Object.keys(details).length) s.details = details;
    return s;
  }
}

/** Identifies the object an error is about, for messages like `pods "web" not found`. */
export interface ResourceRef {
  group: string; // "" for the core group
  resource: string; // plural, e.g. "pods"
  name?: string;
}

function qualified(ref: ResourceRef): string {
  return ref.group ? `${ref.resource}.${ref.group}` : ref.resource;
}

export function notFound(ref: ResourceRef): ApiError {
  return new ApiError(404, "NotFound", `${qualified(ref)} "${ref.name ?? ""}" not found`, {
    name: ref.name,
    group: ref.group,
    kind: ref.resource,
  });
}

export function alreadyExists(ref: ResourceRef): ApiError {
  return new ApiError(409, "AlreadyExists", `${qualified(ref)} "${ref.name ?? ""}" already exists`, {
    name: ref.name,
    group: ref.group,
    kind: ref.resource,
  });
}

export function conflict(ref: ResourceRef, why: string): ApiError {
  return new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${qualified(ref)} "${ref.name ?? ""}": ${why}`, {
    name: ref.name,
    group: ref.group,
    kind: ref.resource,
  });
}

export const STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again";

export interface FieldError {
  /** e.g. "spec.containers[0].image" */
  field: string;
  /** "FieldValueRequired" | "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueNotSupported" | "FieldValueDuplicate" | "FieldValueTooLong" */
  type: string;
  message: string;
}

/** 422 Invalid, in the shape kube-apiserver gives (message lists every cause). */
export function invalid(kind: string, group: string, name: string | undefined, errs: FieldError[]): ApiError {
  const summary = errs.map((e) => `${e.field}: ${e.message}`).join(", ");
  const label = group ? `${kind}.${group}` : kind;
  return new ApiError(422, "Invalid", `${label} "${name ?? ""}" is invalid: ${summary}`, {
    name,
    group,
    kind,
    causes: errs.map((e) => ({ reason: e.type, message: e.message, field: e.field })),
  });
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, "BadRequest", message);
}

export function expired(message: string): ApiError {
  return new ApiError(410, "Expired", message);
}

export function methodNotAllowed(message = "the server does not allow this method on the requested resource"): ApiError {
  return new ApiError(405, "MethodNotAllowed", message);
}

export function unsupportedMediaType(contentType: string): ApiError {
  return new ApiError(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got "${contentType}")`,
  );
}

export function tooLarge(message = "the request body is too large"): ApiError {
  return new ApiError(413, "RequestEntityTooLarge", message);
}

export function unauthorized(): ApiError {
  return new ApiError(401, "Unauthorized", "Unauthorized");
}

export function internal(message: string): ApiError {
  return new ApiError(500, "InternalError", `Internal error occurred: ${message}`);
}

/** Plain form of an ApiError for crossing an RPC boundary. */
export interface WireError {
  code: number;
  reason: StatusReason;
  message: string;
  details: ErrorDetails;
}

export function toWire(e: ApiError): WireError {
  return { code: e.code, reason: e.reason, message: e.message, details: e.details };
}

export function fromWire(w: WireError): ApiError {
  return new ApiError(w.code, w.reason, w.message, w.details);
}
