// Per-kind rules that sit between a request and the store, in the spirit of
// kube-apiserver's registry strategies: what create resets, what an update may change,
// when generation moves. Everything here is pure and works on decoded objects.

import { applyDefaults, defaultPodStatusOnCreate } from "../shared/defaults.ts";
import { badRequest } from "../shared/errors.ts";
import { deepEqual } from "../shared/patch.ts";
import { apiVersionOf, type ResourceInfo } from "../shared/resources.ts";
import { prepareServiceUpdate } from "../shared/service-alloc.ts";
import { assertValid, validateCreate, validateUpdate } from "../shared/validation.ts";
import type { Obj } from "./codec.ts";

export function hasStatus(info: ResourceInfo): boolean {
  return info.subresources.includes("status");
}

/**
 * Whether something still has to finish before a marked object may go: its
 * metadata.finalizers, and for namespaces also spec.finalizers (cleared through the
 * finalize subresource by the namespace controller once the namespace is empty).
 */
export function hasPendingFinalizers(info: ResourceInfo, obj: Obj): boolean {
  if (Array.isArray(obj.metadata?.finalizers) && obj.metadata.finalizers.length > 0) return true;
  return info.resource === "namespaces" && Array.isArray(obj.spec?.finalizers) && obj.spec.finalizers.length > 0;
}

/** Resources for which PUT of a missing object creates it (as kube-apiserver allows). */
export function allowCreateOnUpdate(info: ResourceInfo): boolean {
  return info.resource === "endpoints" || info.resource === "leases" || info.resource === "events";
}

/** Checks a request body is an object of this resource's kind; fills kind/apiVersion. */
export function checkKind(info: ResourceInfo, obj: unknown): Obj {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw badRequest("the request body must be a JSON object");
  const o = obj as Obj;
  const apiVersion = apiVersionOf(info);
  if (o.kind !== undefined && o.kind !== info.kind) {
    throw badRequest(`the body kind "${String(o.kind)}" does not match the resource kind "${info.kind}"`);
  }
  if (o.apiVersion !== undefined && o.apiVersion !== apiVersion) {
    throw badRequest(`the API version in the data (${String(o.apiVersion)}) does not match the expected API version (${apiVersion})`);
  }
  if (o.metadata === undefined || o.metadata === null) o.metadata = {};
  if (typeof o.metadata !== "object" || Array.isArray(o.metadata)) throw badRequest("metadata must be an object");
  o.kind = info.kind;
  o.apiVersion = apiVersion;
  return o;
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export { rfc3339 };

/** Secret.stringData is a write-only convenience: fold it into data (base64), as kube-apiserver does. */
function foldStringData(info: ResourceInfo, obj: Obj): void {
  if (info.resource !== "secrets" || obj.stringData === undefined) return;
  const sd = obj.stringData;
  delete obj.stringData;
  if (typeof sd !== "object" || sd === null || Array.isArray(sd)) throw badRequest("stringData must be a map of strings");
  const data: Obj = typeof obj.data === "object" && obj.data !== null && !Array.isArray(obj.data) ? obj.data : {};
  for (const [k, v] of Object.entries(sd)) {
    if (typeof v !== "string") throw badRequest(`stringData.${k} must be a string`);
    const bytes = new TextEncoder().encode(v);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    data[k] = btoa(bin);
  }
  obj.data = data;
}

/**
 * Prepares a new object for storage: system metadata, reset of fields clients may not
 * set on create, defaults, then validation (422 on failure).
 */
export function prepareCreate(info: ResourceInfo, obj: Obj, now: Date, uid: string): Obj {
  const m = obj.metadata;
  m.uid = uid;
  m.creationTimestamp = rfc3339(now);
  delete m.deletionTimestamp;
  delete m.deletionGracePeriodSeconds;
  delete m.resourceVersion;
  delete m.selfLink;
  if (info.hasSpec) m.generation = 1;
  else delete m.generation;
  if (!info.namespaced) delete m.namespace;
  switch (info.resource) {
    case "pods":
      obj.status = {};
      break;
    case "namespaces":
      obj.status = { phase: "Active" };
      break;
    case "nodes":
      break; // kubelets register nodes with their status
    default:
      if (hasStatus(info)) obj.status = {};
  }
  foldStringData(info, obj);
  applyDefaults(info, obj);
  if (info.resource === "pods") defaultPodStatusOnCreate(obj);
  assertValid(info, validateCreate(info, obj), m.name);
  return obj;
}

/**
 * Merges a client's new version of an object with the stored one. On the main
 * endpoint status is kept from old; on /status everything but status is kept. System
 * metadata always comes from old; generation moves when spec changes.
 */
export function prepareUpdate(info: ResourceInfo, old: Obj, next: Obj, subresource: string | undefined): Obj {
  let out: Obj;
  if (subresource === "status") {
    out = structuredClone(old);
    out.status = next.status;
    if (out.status === undefined) delete out.status;
  } else {
    out = next;
    // The binding subresource writes spec.nodeName and the PodScheduled condition in one
    // write; everywhere else the main endpoint keeps the stored status.
    if (hasStatus(info) && subresource !== "binding") {
      if (old.status === undefined) delete out.status;
      else out.status = old.status;
    }
    const m = out.metadata;
    const om = old.metadata;
    for (const f of ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"]) {
      if (om[f] === undefined) delete m[f];
      else m[f] = om[f];
    }
    if (info.namespaced) m.namespace = om.namespace;
    delete m.selfLink;
    foldStringData(info, out);
    if (info.group === "" && info.kind === "Service") prepareServiceUpdate(old, out);
    applyDefaults(info, out);
    if (info.hasSpec && !deepEqual(out.spec, old.spec)) m.generation = (om.generation ?? 0) + 1;
  }
  out.kind = info.kind;
  out.apiVersion = apiVersionOf(info);
  assertValid(info, validateUpdate(info, out, old), out.metadata?.name);
  return out;
}
