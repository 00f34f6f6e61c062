// Watch fan-out shared by both Store implementations, and the wire form of watch
// events between the StoreDO and the Worker (newline-delimited JSON over a byte stream).
//
// A watcher is registered in the same synchronous turn in which its history is read,
// so no commit can fall between replay and live delivery.

import { type KubeLineOptions, kubeLine } from "./kube-lines.ts";
import type { KV, Watch, WatchEvent } from "./types.ts";

export interface WatchSink {
  /** Delivers one event. A sink that cannot keep up ends itself with an error event. */
  send(ev: WatchEvent, line: Uint8Array): void;
  end(): void;
  readonly closed: boolean;
}

interface Registration {
  prefix: string;
  sink: WatchSink;
  withPrev: boolean;
  /** Set for watchers that get rendered Kubernetes watch lines (kube-lines.ts). */
  kube?: KubeLineOptions;
}

const encoder = new TextEncoder();

/** Encodes an event as one NDJSON line (the StoreDO → Worker wire form). */
export function encodeEvent(ev: WatchEvent, withPrev = false): Uint8Array {
  let o: unknown;
  switch (ev.type) {
    case "put":
    case "delete":
      o = { t: ev.type === "put" ? "p" : "d", k: ev.kv.key, v: ev.kv.value, c: ev.kv.createRevision, m: ev.kv.modRevision };
      if (withPrev && ev.type === "put" && ev.prev !== undefined) (o as { pv?: string }).pv = ev.prev;
      break;
    case "progress":
      o = { t: "r", r: ev.revision };
      break;
    case "error":
      o = { t: "e", code: ev.code, reason: ev.reason, message: ev.message };
      break;
  }
  return encoder.encode(JSON.stringify(o) + "\n");
}

export function decodeEvent(line: string): WatchEvent {
  const o = JSON.parse(line);
  switch (o.t) {
    case "p":
    case "d": {
      const kv: KV = { key: o.k, value: o.v, createRevision: o.c, modRevision: o.m };
      if (o.t === "d") return { type: "delete", kv };
      return o.pv === undefined ? { type: "put", kv } : { type: "put", kv, prev: o.pv };
    }
    case "r":
      return { type: "progress", revision: o.r };
    default:
      return { type: "error", code: o.code, reason: o.reason, message: o.message };
  }
}

export class WatchHub {
  private readonly regs = new Set<Registration>();

  get size(): number {
    return this.regs.size;
  }

  /** Registers a live watcher; returns its unregister function. */
  add(prefix: string, sink: WatchSink, withPrev = false, kube?: KubeLineOptions): () => void {
    const reg = { prefix, sink, withPrev, kube };
    this.regs.add(reg);
    return () => this.regs.delete(reg);
  }

  /** Delivers committed events, in revision order, to every watcher whose prefix matches. */
  publish(events: WatchEvent[]): void {
    if (this.regs.size === 0) return;
    // Each event is encoded at most twice (with and without prev), not once per watcher.
    const plain: (Uint8Array | undefined)[] = [];
    const withPrev: (Uint8Array | undefined)[] = [];
    const line = (i: number, prev: boolean) =>
      prev ? (withPrev[i] ??= encodeEvent(events[i], true)) : (plain[i] ??= encodeEvent(events[i], false));
    // Kubernetes lines: once per event (bookmarks once per kind).
    const kube: (Uint8Array | undefined | null)[] = [];
    const bookmarks = new Map<string, Uint8Array | undefined>();
    const kubeLineOf = (i: number, opts: KubeLineOptions) => {
      const ev = events[i];
      if (ev.type === "progress") {
        const k = opts.bookmark ? `${opts.bookmark.apiVersion}/${opts.bookmark.kind}` : "";
        if (!bookmarks.has(k)) bookmarks.set(k, kubeLine(ev, opts));
        return bookmarks.get(k);
      }
      if (kube[i] === undefined) kube[i] = kubeLine(ev, opts) ?? null;
      return kube[i] ?? undefined;
    };
    for (const reg of this.regs) {
      if (reg.sink.closed) {
        this.regs.delete(reg);
        continue;
      }
      for (let i = 0; i < events.length; i++) {
        const ev = events[i];
        if ((ev.type === "put" || ev.type === "delete") && !ev.kv.key.startsWith(reg.prefix)) continue;
        if (reg.kube) {
          const l = kubeLineOf(i, reg.kube);
          if (l) reg.sink.send(ev, l);
        } else reg.sink.send(reg.withPrev || ev.type !== "put" ? ev : { type: "put", kv: ev.kv }, line(i, reg.withPrev));
        if (reg.sink.closed) break;
      }
    }
  }

  /** Tells every watcher that all events up to revision have been delivered. */
  progress(revision: number): void {
    this.publish([{ type: "progress", revision }]);
  }

  closeAll(): void {
    for (const reg of this.regs) reg.sink.end();
    this.regs.clear();
  }
}

export const SLOW_WATCHER: WatchEvent = {
  type: "error",
  code: 410,
  reason: "Expired",
  message: "watch closed: the watcher fell too far behind; restart the watch",
};

/**
 * An in-process watch: an unbounded-looking but capped queue behind an async iterator.
 * Used by the in-memory store and by the Worker side of a remote watch. If more than
 * maxQueued events wait unread, the watch ends with SLOW_WATCHER rather than grow.
 */
export class QueueWatch implements Watch, WatchSink {
  private queue: WatchEvent[] = [];
  private waiter: (() => void) | null = null;
  private done = false;
  private onClose: (() => void) | null = null;

  private readonly maxQueued: number;

  constructor(maxQueued = 100_000) {
    this.maxQueued = maxQueued;
  }

  setOnClose(fn: () => void): void {
    this.onClose = fn;
  }

  get closed(): boolean {
    return this.done;
  }

  send(ev: WatchEvent): void {
    if (this.done) return;
    if (this.queue.length >= this.maxQueued) {
      this.queue.push(SLOW_WATCHER);
      this.end();
      return;
    }
    this.queue.push(ev);
    this.wake();
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.onClose?.();
    this.wake();
  }

  close(): void {
    this.queue = [];
    this.end();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    for (;;) {
      if (this.queue.length) {
        const batch = this.queue;
        this.queue = [];
        for (const ev of batch) yield ev;
        continue;
      }
      if (this.done) return;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

/** Consumes an NDJSON byte stream of encoded events as a Watch. */
export function watchFromStream(stream: ReadableStream<Uint8Array>): Watch {
  const reader = stream.getReader();
  let closed = false;
  const decoder = new TextDecoder();
  return {
    close() {
      if (closed) return;
      closed = true;
      reader.cancel().catch(() => {});
    },
    async *[Symbol.asyncIterator]() {
      let buf = "";
      try {
        while (!closed) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line) yield decodeEvent(line);
          }
        }
      } catch (e) {
        if (!closed) yield { type: "error", code: 500, reason: "InternalError", message: `watch stream broke: ${String(e)}` };
      } finally {
        closed = true;
        reader.cancel().catch(() => {});
      }
    },
  };
}
