// pods/log through the tunnel: reads a container's log files (rotated file, then the
// current one) with kube's PodLogOptions, streaming with flow control (a slow client
// stops the file reads, not the agent), and follows the file until the container stops.

import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { type LogIndex, offsetSince, rfc3339Nano, type Sample, tailOffset, timeAt } from "../logs.ts";
import type { StreamDeps, StreamHandler } from "./types.ts";

interface LogHeader {
  namespace: string;
  pod: string;
  uid: string;
  container: string;
  follow?: boolean;
  previous?: boolean;
  timestamps?: boolean;
  tailLines?: number;
  limitBytes?: number;
  sinceSeconds?: number;
  sinceTime?: string;
}

const CHUNK = 64 * 1024;
const FOLLOW_POLL_MS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Budget extends Error {}

/** Writes log bytes out, with timestamps per line when asked, up to limitBytes. */
class Emitter {
  private readonly write: (b: Uint8Array) => Promise<void>;
  private left: number;
  private partial: Buffer[] = [];
  private readonly timestamps: boolean;

  constructor(write: (b: Uint8Array) => Promise<void>, limitBytes: number | undefined, timestamps: boolean) {
    this.write = write;
    this.left = limitBytes ?? Number.POSITIVE_INFINITY;
    this.timestamps = timestamps;
  }

  private async out(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    const take = b.length > this.left ? b.subarray(0, this.left) : b;
    this.left -= take.length;
    for (let i = 0; i < take.length; i += CHUNK) await this.write(take.subarray(i, Math.min(take.length, i + CHUNK)));
    if (this.left <= 0) throw new Budget();
  }

  /** bytes read from a file, ending at file offset `end`. */
  async bytes(b: Buffer, end: number, samples: Sample[]): Promise<void> {
    if (!this.timestamps) return this.out(b);
    let start = 0;
    const parts: Buffer[] = [];
    for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, start)) {
      const line = Buffer.concat([...this.partial, b.subarray(start, i + 1)]);
      this.partial = [];
      const lineEnd = end - b.length + i + 1;
      parts.push(Buffer.from(`${rfc3339Nano(timeAt(samples, lineEnd, Date.now()))} `), line);
      start = i + 1;
    }
    if (start < b.length) this.partial.push(b.subarray(start));
    await this.out(Buffer.concat(parts));
  }

  /** End of input: a last line without a newline goes out too. */
  async flush(): Promise<void> {
    if (!this.partial.length) return;
    const line = Buffer.concat(this.partial);
    this.partial = [];
    await this.out(this.timestamps ? Buffer.concat([Buffer.from(`${rfc3339Nano(Date.now())} `), line]) : line);
  }
}

/** Reads path from `from` to its current end (or `to`); returns where it stopped. */
async function pump(path: string, from: number, to: number, em: Emitter, samples: Sample[]): Promise<number> {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(CHUNK);
    let pos = from;
    while (pos < to) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, to - pos), pos);
      if (n <= 0) break;
      pos += n;
      await em.bytes(Buffer.from(buf.subarray(0, n)), pos, samples);
    }
    return pos;
  } finally {
    closeSync(fd);
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** First offset at or after `off` that starts a line. */
function lineStart(path: string, off: number): number {
  if (off === 0) return 0;
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(4096);
    let pos = off - 1;
    for (;;) {
      const n = readSync(fd, b, 0, b.length, pos);
      if (n <= 0) return pos;
      const i = b.subarray(0, n).indexOf(10);
      if (i >= 0) return pos + i + 1;
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

export function logHandler(index: LogIndex): StreamHandler {
  return async (stream, deps) => serveLog(stream, deps, index);
}

async function serveLog(stream: Parameters<StreamHandler>[0], deps: StreamDeps, index: LogIndex): Promise<void> {
  const h = stream.header as unknown as LogHeader;
  const files = deps.logFiles(h.uid, h.container, h.previous).filter((f) => existsSync(f));
  if (files.length === 0) {
    const message = h.previous
      ? `previous terminated container "${h.container}" in pod "${h.pod}" not found`
      : `container "${h.container}" in pod "${h.pod}" is waiting to start: ContainerCreating`;
    stream.reply({ code: 400, reason: "BadRequest", message });
    stream.end();
    return;
  }
  stream.reply({ code: 200, headers: [["content-type", "text/plain"]] });
  const em = new Emitter((b) => stream.write(b), h.limitBytes, !!h.timestamps);
  // Where each file starts: all of it, its tail, or what was written since.
  const sizes = files.map(sizeOf);
  const starts = files.map(() => 0);
  if (h.tailLines !== undefined) {
    let need = h.tailLines;
    for (let i = files.length - 1; i >= 0; i--) {
      if (need <= 0) {
        starts[i] = sizes[i];
        continue;
      }
      const t = tailOffset(files[i], sizes[i], need);
      starts[i] = t.offset;
      need -= t.lines;
    }
  }
  const sinceMs = h.sinceTime ? Date.parse(h.sinceTime) : h.sinceSeconds ? Date.now() - h.sinceSeconds * 1000 : undefined;
  if (sinceMs !== undefined) {
    files.forEach((f, i) => {
      starts[i] = Math.max(starts[i], lineStart(f, offsetSince(index.get(f), sinceMs)));
    });
  }
  try {
    let pos = 0;
    for (let i = 0; i < files.length; i++) pos = await pump(files[i], starts[i], sizes[i], em, index.get(files[i]));
    if (h.follow && !h.previous) {
      const current = files[files.length - 1];
      let lastCheck = 0;
      for (;;) {
        if (stream.isReset) return;
        const size = sizeOf(current);
        if (size < pos) {
          // Rotated (copy-truncate): what was written before it is at the end of the copy.
          const copy = `${current}.1`;
          const copied = sizeOf(copy);
          if (copied > pos) await pump(copy, pos, copied, em, index.get(copy));
          pos = 0;
        }
        if (size > pos) {
          index.note(current);
          pos = await pump(current, pos, size, em, index.get(current));
          continue;
        }
        if (Date.now() - lastCheck > 1000) {
          lastCheck = Date.now();
          const c = await deps.findContainer(h.uid, h.container);
          const newer = deps.logFiles(h.uid, h.container).at(-1);
          if (c?.state !== "running" || newer !== current) {
            if (sizeOf(current) === pos) break;
            continue;
          }
        }
        await sleep(FOLLOW_POLL_MS);
      }
    }
    await em.flush();
  } catch (e) {
    if (!(e instanceof Budget)) throw e;
  }
  stream.end();
}
