// ?watch=true: turns a store watch into the Kubernetes watch stream (chunked,
// newline-delimited JSON WatchEvents). Selectors are applied here, on the Worker, with
// the previous value of each object so that an object leaving the selector is sent as
// DELETED and one entering it as ADDED, as kube-apiserver does.

import type { RemoteStore } from "../../durable-objects/store/remote.ts";
import type { Watch } from "../../durable-objects/store/types.ts";
import { ApiError, badRequest } from "../shared/errors.ts";
import { apiVersionOf } from "../shared/resources.ts";
import { decodeObject, type Obj, parseResourceVersion, stampJSON } from "./codec.ts";
import { type Ctx, hasSelectors, parseSelectors, scanPrefix, selects, type Target } from "./registry.ts";

export interface WatchConfig {
  /** Minimum ms between BOOKMARK events. */
  bookmarkIntervalMs: number;
  /**
   * Re-renders each event's object (JSON in, JSON out), e.g. as a one-row Table for
   * kubectl get -w. `first` is true for the first object event of the stream.
   */
  render?: (objectJSON: string, first: boolean) => string;
  /** timeoutSeconds when the client gives none (kube-apiserver: 30-60 min). */
  defaultTimeoutSeconds: number;
}

const encoder = new TextEncoder();

function rawLine(type: string, objectJSON: string): Uint8Array {
  return encoder.encode(`{"type":"${type}","object":${objectJSON}}\n`);
}

function errorLine(e: ApiError): Uint8Array {
  return rawLine("ERROR", JSON.stringify(e.toStatus()));
}

/**
 * Starts a watch and returns the streaming Response. Errors found before streaming
 * starts (bad selectors) are thrown as usual; a resourceVersion that is too old is sent
 * as a single ERROR event with a 410 Status, as kube-apiserver does.
 */
export async function watchResponse(ctx: Ctx, t: Target, query: URLSearchParams, cfg: WatchConfig): Promise<Response> {
  const sel = parseSelectors(t.info, query);
  const { prefix } = scanPrefix(t, sel);
  const rvParam = query.get("resourceVersion") ?? "";
  const rv = parseResourceVersion(rvParam);
  if (Number.isNaN(rv)) throw badRequest(`invalid resourceVersion "${rvParam}"`);
  const bookmarks = query.get("allowWatchBookmarks") === "true" || query.get("allowWatchBookmarks") === "1";
  const sendInitial = query.get("sendInitialEvents") === "true";
  if (sendInitial && !bookmarks) throw badRequest("sendInitialEvents requires allowWatchBookmarks=true");
  const tsParam = query.get("timeoutSeconds");
  let timeoutSeconds = cfg.defaultTimeoutSeconds;
  if (tsParam !== null && tsParam !== "") {
    if (!/^\d+$/.test(tsParam)) throw badRequest(`invalid timeoutSeconds "${tsParam}"`);
    timeoutSeconds = Number(tsParam);
  }
  const filtering = hasSelectors(sel);
  let first = true;
  const line = (type: string, objectJSON: string): Uint8Array => {
    if (!cfg.render || type === "BOOKMARK") return rawLine(type, objectJSON);
    const out = rawLine(type, cfg.render(objectJSON, first));
    first = false;
    return out;
  };
  const bookmarkKind = { kind: t.info.kind, apiVersion: apiVersionOf(t.info) };

  const headers = {
    "content-type": "application/json",
    // identity: never let a proxy (Miniflare's entry worker, Cloudflare's edge) gzip a
    // watch, since a compressor holds events back until its buffer fills.
    "content-encoding": "identity",
    "cache-control": "no-cache, private",
    "x-content-type-options": "nosniff",
  };

  // Fast path: no selectors and no re-rendering. The StoreDO renders each event's watch
  // line once for all such watchers (initial state, bookmarks and timeout included), and
  // its stream is the response body: no JavaScript touches the events in the Worker.
  const lines = (ctx.store as { watchLines?: RemoteStore["watchLines"] }).watchLines;
  if (!filtering && !cfg.render && typeof lines === "function") {
    const initialState = rv === undefined || rv === 0 || sendInitial;
    try {
      const stream = await lines.call(ctx.store, prefix, rv ?? 0, {
        bookmark: bookmarks ? bookmarkKind : undefined,
        bookmarkEveryMs: cfg.bookmarkIntervalMs,
        initial: initialState,
        initialEndBookmark: sendInitial,
        timeoutMs: timeoutSeconds * 1000,
      });
      return new Response(stream, { status: 200, headers });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const err = e.code === 410 ? new ApiError(410, "Expired", `too old resource version: ${rv} (${e.message})`) : e;
      return new Response(errorLine(err), { status: 200, headers });
    }
  }

  // Where to start. "" and "0" (and sendInitialEvents) mean: the current state as
  // synthetic ADDED events, then changes after it. A number means: changes after it.
  const initial: Uint8Array[] = [];
  let from: number;
  if (rv === undefined || rv === 0 || sendInitial) {
    const res = await ctx.store.list(prefix);
    from = res.revision;
    for (const kv of res.items) {
      if (filtering) {
        const obj = decodeObject(kv.value, kv.modRevision);
        if (!selects(sel, obj)) continue;
        initial.push(line("ADDED", JSON.stringify(obj)));
      } else {
        initial.push(line("ADDED", stampJSON(kv.value, kv.modRevision)));
      }
    }
    if (sendInitial) {
      initial.push(
        line(
          "BOOKMARK",
          JSON.stringify({
            ...bookmarkKind,
            metadata: { resourceVersion: String(from), annotations: { "k8s.io/initial-events-end": "true" } },
          }),
        ),
      );
    }
  } else {
    from = rv;
  }

  const tooOld = (e: ApiError) => (e.code === 410 ? new ApiError(410, "Expired", `too old resource version: ${from} (${e.message})`) : e);

  let watch: Watch | null = null;
  let startError: ApiError | null = null;
  try {
    watch = await ctx.store.watch(prefix, from, filtering);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    startError = tooOld(e);
  }

  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const pump = async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      for (const l of initial) await writer.write(l);
      if (startError || !watch) {
        await writer.write(errorLine(startError!));
        return;
      }
      const w = watch;
      timer = setTimeout(() => w.close(), timeoutSeconds * 1000);
      let lastBookmark = Date.now();
      for await (const ev of w) {
        if (ev.type === "progress") {
          if (bookmarks && Date.now() - lastBookmark >= cfg.bookmarkIntervalMs) {
            lastBookmark = Date.now();
            await writer.write(line("BOOKMARK", JSON.stringify({ ...bookmarkKind, metadata: { resourceVersion: String(ev.revision) } })));
          }
          continue;
        }
        if (ev.type === "error") {
          await writer.write(errorLine(new ApiError(ev.code, ev.reason as ApiError["reason"], ev.message)));
          break;
        }
        const rv = ev.kv.modRevision;
        if (!filtering) {
          const type = ev.type === "delete" ? "DELETED" : ev.kv.createRevision === rv ? "ADDED" : "MODIFIED";
          await writer.write(line(type, stampJSON(ev.kv.value, rv)));
          continue;
        }
        const obj = decodeObject(ev.kv.value, rv);
        const now = selects(sel, obj);
        if (ev.type === "delete") {
          if (now) await writer.write(line("DELETED", JSON.stringify(obj)));
          continue;
        }
        const before = ev.prev !== undefined && selects(sel, JSON.parse(ev.prev) as Obj);
        if (now && before) await writer.write(line("MODIFIED", JSON.stringify(obj)));
        else if (now) await writer.write(line("ADDED", JSON.stringify(obj)));
        else if (before) await writer.write(line("DELETED", JSON.stringify(obj)));
      }
    } catch {
      // The client went away (write failed) or the store stream broke; either way, end.
    } finally {
      if (timer) clearTimeout(timer);
      watch?.close();
      writer.close().catch(() => {});
    }
  };
  void pump();
  return new Response(readable, { status: 200, headers });
}
