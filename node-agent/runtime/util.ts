// Small helpers shared by the runtimes (no runtime-specific state here).

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LABEL_NODE } from "./types.ts";

/** The host's primary IPv4 address (first non-internal interface), or 127.0.0.1. */
export function hostPrimaryIPv4(): string {
  const ifaces = os.networkInterfaces();
  for (const name of Object.keys(ifaces).sort()) {
    for (const a of ifaces[name] ?? []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  return "127.0.0.1";
}

/** kube's reason for a terminated container: OOMKilled, Completed (exit 0) or Error. */
export function exitReason(exitCode: number, oomKilled = false): string {
  if (oomKilled) return "OOMKilled";
  return exitCode === 0 ? "Completed" : "Error";
}

/** The labels to put on a container: the agent's, with LABEL_NODE forced to this node. */
export function withNodeLabel(labels: Record<string, string>, nodeName: string): Record<string, string> {
  return { ...labels, [LABEL_NODE]: nodeName };
}

/** Exec output kept for the caller (kubelet keeps 10 KiB of probe output; we keep a bit more). */
export const EXEC_OUTPUT_LIMIT = 64 * 1024;

/** Appends to a capped output buffer. */
export function appendCapped(chunks: Buffer[], state: { size: number }, chunk: Buffer): void {
  if (state.size >= EXEC_OUTPUT_LIMIT) return;
  const part = chunk.subarray(0, EXEC_OUTPUT_LIMIT - state.size);
  chunks.push(part);
  state.size += part.length;
}

/** Appends data to file, creating its directory when missing. */
export async function appendToFile(file: string, data: string | Buffer): Promise<void> {
  try {
    await fs.promises.appendFile(file, data);
  } catch (e: any) {
    if (e?.code !== "ENOENT") throw e;
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    await fs.promises.appendFile(file, data);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
