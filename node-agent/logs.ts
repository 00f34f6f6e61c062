// Reading container logs for `kubectl logs`: tailLines, sinceSeconds/sinceTime,
// timestamps, limitBytes, follow.
//
// The runtimes write raw output to <state>/logs/<uid>/<container>/<attempt>.log (the
// process runtime hands the file to the process itself, so the agent can restart without
// breaking its pods' output), which carries no per-line times. The LogIndex gives them:
// once a second it notes each log file's size with the time, in memory and appended to
// <file>.idx, so a line's time is the first sample at or past its end: exact to the
// sampling interval, which is the resolution `timestamps` and `since` have here.

import {
  appendFileSync,
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

export type Sample = [offset: number, timeMs: number];

/** Parses an index file ("offset timeMs" lines). */
export function parseIndex(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const [o, t] = line.split(" ").map(Number);
    if (Number.isFinite(o) && Number.isFinite(t) && line) out.push([o, t]);
  }
  return out;
}

/** The time of the byte just before `end`: the first sample whose offset reaches it (else now). */
export function timeAt(samples: Sample[], end: number, now: number): number {
  let lo = 0;
  let hi = samples.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (samples[mid][0] >= end) hi = mid;
    else lo = mid + 1;
  }
  return lo < samples.length ? samples[lo][1] : now;
}

/** The first offset whose bytes were written at or after `since` (the sample before it). */
export function offsetSince(samples: Sample[], sinceMs: number): number {
  let off = 0;
  for (const [o, t] of samples) {
    if (t >= sinceMs) return off;
    off = o;
  }
  return off;
}

/** RFC 3339 with nanoseconds, as kubelet prints timestamps. */
export function rfc3339Nano(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
}

/** Keeps the size/time samples of every log file under root. */
export class LogIndex {
  private readonly root: string;
  private readonly samples = new Map<string, Sample[]>();

  constructor(root: string) {
    this.root = root;
  }

  /** Samples of one log file (loaded from its .idx the first time). */
  get(path: string): Sample[] {
    let s = this.samples.get(path);
    if (!s) {
      s = existsSync(`${path}.idx`) ? parseIndex(readFileSync(`${path}.idx`, "utf8")) : [];
      this.samples.set(path, s);
    }
    return s;
  }

  /** Notes the size of every log file that grew (call about once a second). */
  tick(now = Date.now()): void {
    let pods: string[] = [];
    try {
      pods = readdirSync(this.root);
    } catch {
      return;
    }
    const seen = new Set<string>();
    for (const uid of pods) {
      let containers: string[] = [];
      try {
        containers = readdirSync(join(this.root, uid));
      } catch {
        continue;
      }
      for (const c of containers) {
        let files: string[] = [];
        try {
          files = readdirSync(join(this.root, uid, c));
        } catch {
          continue;
        }
        for (const f of files) {
          if (!/\.log(\.1)?$/.test(f)) continue;
          const path = join(this.root, uid, c, f);
          seen.add(path);
          this.note(path, now);
        }
      }
    }
    for (const k of this.samples.keys()) if (!seen.has(k)) this.samples.delete(k);
  }

  note(path: string, now = Date.now()): void {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return;
    }
    const s = this.get(path);
    const last = s.length ? s[s.length - 1][0] : 0;
    if (size === last) return;
    if (size < last) {
      // Truncated behind our back (rotation): start over.
      s.length = 0;
      rmSync(`${path}.idx`, { force: true });
      if (size === 0) return;
    }
    s.push([size, now]);
    try {
      appendFileSync(`${path}.idx`, `${size} ${now}\n`);
    } catch {}
  }

  /** The agent copied path to path.1 and truncated path: the samples move along. */
  rotated(path: string, now = Date.now()): void {
    const moved = this.get(path).slice();
    // The copy holds everything written up to the rotation: its tail gets this moment.
    try {
      const size = statSync(`${path}.1`).size;
      if (size > 0 && (moved.length === 0 || moved[moved.length - 1][0] < size)) moved.push([size, now]);
    } catch {}
    this.samples.set(`${path}.1`, moved);
    this.samples.set(path, []);
    try {
      writeFileSync(`${path}.1.idx`, moved.map(([o, t]) => `${o} ${t}\n`).join(""));
      rmSync(`${path}.idx`, { force: true });
    } catch {}
  }
}

/**
 * Offset of the start of the n-th last line of the file (n = 0: its end), and how many
 * lines that takes (fewer than n when the file has fewer: offset 0).
 */
export function tailOffset(path: string, size: number, n: number): { offset: number; lines: number } {
  if (n <= 0 || size === 0) return { offset: size, lines: 0 };
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(64 * 1024);
    let pos = size;
    let lines = 0;
    // A final line without a newline counts as a line too.
    let skipFinalNewline = true;
    while (pos > 0) {
      const len = Math.min(buf.length, pos);
      pos -= len;
      readSync(fd, buf, 0, len, pos);
      for (let i = len - 1; i >= 0; i--) {
        if (buf[i] !== 10) {
          skipFinalNewline = false;
          continue;
        }
        if (skipFinalNewline && pos + i === size - 1) {
          skipFinalNewline = false;
          continue;
        }
        lines++;
        if (lines === n) return { offset: pos + i + 1, lines };
      }
    }
    return { offset: 0, lines: skipFinalNewline ? lines : lines + 1 };
  } finally {
    closeSync(fd);
  }
}
