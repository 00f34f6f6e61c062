// The one place the store knows the shape of Kubernetes objects, as an optimisation of
// watch fan-out: for watchers without selectors the StoreDO renders each event once as
// the final Kubernetes watch line ({"type":"MODIFIED","object":{...}}), so the Worker
// pipes the bytes to the client without parsing them, and N watchers cost N stream
// writes of the same bytes instead of N parses and N renders.
//
// Stored values are objects written by workers/api/codec.ts: "metadata" first, without
// resourceVersion, which the row's revision supplies.

import type { WatchEvent } from "./types.ts";

const HEAD = '{"metadata":{';

/** The stored JSON with metadata.resourceVersion = rv, by splicing (no parse). */
export function stampJSON(value: string, rv: number): string {
  if (!value.startsWith(HEAD)) {
    const o = JSON.parse(value);
    o.metadata = { ...(o.metadata ?? {}), resourceVersion: String(rv) };
    return JSON.stringify(o);
  }
  const sep = value.charCodeAt(HEAD.length) === 125 /* } */ ? "" : ",";
  return `${HEAD}"resourceVersion":"${rv}"${sep}${value.slice(HEAD.length)}`;
}

export interface KubeLineOptions {
  /** kind and apiVersion for BOOKMARK objects; without it progress yields no line. */
  bookmark?: { kind: string; apiVersion: string };
}

const encoder = new TextEncoder();

/** The Kubernetes watch line for an event, or undefined when it has none. */
export function kubeLine(ev: WatchEvent, opts: KubeLineOptions): Uint8Array | undefined {
  switch (ev.type) {
    case "put":
    case "delete": {
      const type = ev.type === "delete" ? "DELETED" : ev.kv.createRevision === ev.kv.modRevision ? "ADDED" : "MODIFIED";
      return encoder.encode(`{"type":"${type}","object":${stampJSON(ev.kv.value, ev.kv.modRevision)}}\n`);
    }
    case "progress":
      if (!opts.bookmark) return undefined;
      return encoder.encode(
        `{"type":"BOOKMARK","object":${JSON.stringify({ ...opts.bookmark, metadata: { resourceVersion: String(ev.revision) } })}}\n`,
      );
    case "error": {
      const status = {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: ev.message,
        reason: ev.reason,
        code: ev.code,
      };
      return encoder.encode(`{"type":"ERROR","object":${JSON.stringify(status)}}\n`);
    }
  }
}
