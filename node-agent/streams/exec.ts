// `kubectl exec` and `kubectl attach` on the agent: the control plane has accepted kubectl's
// WebSocket and negotiated the subprotocol; each chunk of the tunnel stream is one WebSocket
// message of that protocol (remotecommand.ts), in both directions. Header:
//   { kind: "exec" | "attach", namespace, pod, uid, container, command (exec), stdin, stdout,
//     stderr, tty, protocol }
//
// The handler answers 400/404 (and ends the stream) when the request cannot start: a bad
// header, a pod that is not on this node, a container the pod does not have or that is not
// running. Otherwise it replies 200 and behaves as kubelet's streaming server: an empty
// message on the first output channel, then output and input until the process exits (exec)
// or the attachment ends (attach), then the Status on the error channel, then END. The
// control plane closes kubectl's WebSocket on END (kubectl waits for that close). A session
// that fails to start after the reply gets an InternalError Status, as from kubelet.
//
// Backpressure: output is read from the process only as fast as the tunnel takes it (each
// write awaits credit); input is read from the tunnel only while the process's stdin drains.
// A reset of the stream (kubectl went away) abandons the session: an exec'd process is killed
// where the runtime can, an attach detaches.

import type { Readable, Writable } from "node:stream";
import { MAX_CHUNK, type TunnelStream } from "../../workers/shared/tunnel.ts";
import {
  CHANNEL_RESIZE,
  CHANNEL_STDERR,
  CHANNEL_STDIN,
  CHANNEL_STDOUT,
  type ChannelProtocol,
  decodeMessage,
  encodeMessage,
  encodeMessages,
  encodeStatus,
  execStatus,
  firstChannel,
  internalErrorStatus,
  parseProtocol,
  ResizeDecoder,
  type SessionOptions,
  type Status,
  sessionOptions,
  successStatus,
} from "../remotecommand.ts";
import type { ExecSession } from "../runtime/types.ts";
import type { StreamDeps, StreamHandler } from "./types.ts";

type Kind = "exec" | "attach";

interface Request {
  kind: Kind;
  namespace: string;
  pod: string;
  uid: string;
  container: string;
  command: string[];
  protocol: ChannelProtocol;
  opts: SessionOptions;
}

class RequestError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

const badRequest = (msg: string) => new RequestError(400, "BadRequest", msg);
const notFound = (msg: string) => new RequestError(404, "NotFound", msg);

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** The header as a request; RequestError when it is not one. */
function parseHeader(kind: Kind, h: Record<string, unknown>): Request {
  const protocol = parseProtocol(typeof h.protocol === "string" ? h.protocol : "");
  if (!protocol) throw badRequest(`unsupported streaming protocol ${JSON.stringify(h.protocol)}`);
  const opts = sessionOptions(h);
  if (typeof opts === "string") throw badRequest(opts);
  const command = Array.isArray(h.command) ? h.command.filter((x): x is string => typeof x === "string") : [];
  if (kind === "exec" && command.length === 0) throw badRequest("you must specify at least one command for the container");
  if (!str(h.uid)) throw badRequest("the pod's uid is missing");
  return { kind, namespace: str(h.namespace), pod: str(h.pod), uid: str(h.uid), container: str(h.container), command, protocol, opts };
}

function containerNames(pod: Record<string, any>): string[] {
  const spec = pod.spec ?? {};
  const names: string[] = [];
  for (const list of [spec.containers, spec.initContainers, spec.ephemeralContainers]) {
    if (!Array.isArray(list)) continue;
    for (const c of list) if (typeof c?.name === "string") names.push(c.name);
  }
  return names;
}

/** The running container the request names, or a RequestError saying why there is none. */
async function resolveContainer(req: Request, deps: StreamDeps): Promise<{ id: string; name: string }> {
  const pod = deps.pod(req.uid);
  const podName = req.pod || str(pod?.metadata?.name);
  if (!pod) throw notFound(`pod ${req.namespace}/${podName} (uid ${req.uid}) is not running on node ${deps.nodeName}`);
  const name = req.container || str(pod.spec?.containers?.[0]?.name);
  if (!name || !containerNames(pod).includes(name)) throw badRequest(`container ${name} is not valid for pod ${podName}`);
  const c = await deps.findContainer(req.uid, name);
  if (!c) throw notFound(`container not found ("${name}")`);
  if (c.state !== "running") throw notFound(`container ${name} in pod ${podName} is not running`);
  return { id: c.id, name };
}

async function startSession(req: Request, deps: StreamDeps, id: string): Promise<ExecSession> {
  const rt = deps.runtime;
  const streamOpts = { stdin: req.opts.stdin, tty: req.opts.tty };
  if (req.kind === "exec") {
    if (!rt.execStream) throw new Error(`the ${rt.name} runtime does not support interactive exec`);
    return rt.execStream(id, req.command, streamOpts);
  }
  if (!rt.attach) throw new Error(`the ${rt.name} runtime does not support attach`);
  return rt.attach(id, streamOpts);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Resolves when w can take more (drained), or is gone. */
function drained(w: Writable): Promise<void> {
  if (w.destroyed || w.writableEnded || !w.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      w.off("drain", done);
      w.off("close", done);
      w.off("error", done);
      resolve();
    };
    w.on("drain", done);
    w.on("close", done);
    w.on("error", done);
  });
}

/**
 * Copies one output to the stream as channel messages (or discards it when the client did not
 * ask for that channel), one tunnel write at a time. Resolves at the output's end; rejects when
 * the tunnel stream is reset.
 */
async function pumpOutput(stream: TunnelStream, p: ChannelProtocol, channel: number, out: Readable | undefined, wanted: boolean) {
  if (!out) return;
  if (!wanted) {
    out.resume();
    await new Promise<void>((resolve) => {
      out.once("end", resolve);
      out.once("close", resolve);
      out.once("error", () => resolve());
    });
    return;
  }
  try {
    for await (const chunk of out) {
      const data = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
      if (data.length === 0) continue;
      for (const msg of encodeMessages(p, channel, data, MAX_CHUNK)) await stream.write(msg);
    }
  } catch (e) {
    if (stream.isReset) throw e;
    // the process's pipe broke: its output is over
  }
}

/**
 * Feeds client messages to the session until the peer ends or resets the stream, or the
 * session is over (then it returns "over"). stdin waits while the process does not drain it.
 * A WebSocket cannot half-close, so the peer's END, like a reset, means kubectl is gone.
 */
async function pumpInput(stream: TunnelStream, req: Request, session: ExecSession, over: () => boolean): Promise<"gone" | "over"> {
  const resize = new ResizeDecoder();
  const stdin = req.opts.stdin ? session.stdin : undefined;
  stdin?.on("error", () => {}); // EPIPE once the process is gone: its exit decides the outcome
  const closeStdin = () => {
    if (stdin && !stdin.writableEnded && !stdin.destroyed) stdin.end();
  };
  for (;;) {
    let chunk: Uint8Array | null;
    try {
      chunk = await stream.read();
    } catch {
      return over() ? "over" : "gone";
    }
    if (over()) return "over";
    if (chunk === null) {
      closeStdin();
      return "gone";
    }
    const m = decodeMessage(req.protocol, chunk);
    if (m.type === "close") {
      if (m.channel === CHANNEL_STDIN) closeStdin();
      continue;
    }
    if (m.type !== "data") continue;
    if (m.channel === CHANNEL_STDIN) {
      if (!stdin || stdin.writableEnded || stdin.destroyed || m.data.length === 0) continue;
      // a copy: the chunk's buffer may be reused once handed on
      if (!stdin.write(Buffer.from(m.data))) await Promise.race([drained(stdin), stream.done()]);
    } else if (m.channel === CHANNEL_RESIZE && req.opts.tty) {
      for (const size of resize.push(m.data)) session.resize(size.width, size.height);
    }
    // anything else is ignored, as by kubelet
  }
}

async function serve(kind: Kind, stream: TunnelStream, deps: StreamDeps): Promise<void> {
  let req: Request;
  let target: { id: string; name: string };
  try {
    req = parseHeader(kind, stream.header);
    target = await resolveContainer(req, deps);
  } catch (e) {
    // a RequestError is the client's; anything else (the runtime did not answer) is ours
    const r = e instanceof RequestError ? e : new RequestError(500, "InternalError", errorMessage(e));
    stream.reply({ code: r.code, reason: r.reason, message: r.message });
    stream.end();
    return;
  }
  const p = req.protocol;
  const what = kind === "exec" ? "error executing command in container" : "error attaching to container";
  const where = `${kind} ${req.namespace}/${req.pod}/${target.name}`;
  const writeStatus = async (s: Status) => {
    const msg = encodeStatus(p, s);
    if (msg) await stream.write(msg);
  };

  let session: ExecSession;
  try {
    session = await startSession(req, deps, target.id);
  } catch (e) {
    // as kubelet: the connection is upgraded first, so the failure travels as a Status
    deps.log(`${where}: ${errorMessage(e)}`);
    stream.reply({ code: 200 });
    try {
      await stream.write(encodeMessage(p, firstChannel(req.opts)));
      await writeStatus(internalErrorStatus(`${what}: ${errorMessage(e)}`));
      stream.end();
    } catch {
      // reset meanwhile: nobody to tell
    }
    return;
  }

  stream.reply({ code: 200 });
  let over = false;
  // kubectl gone: abandon the session, which ends its output and settles its exit
  void pumpInput(stream, req, session, () => over).then((r) => {
    if (r === "gone" && !over) session.close();
  });
  try {
    await stream.write(encodeMessage(p, firstChannel(req.opts)));
    await Promise.all([
      pumpOutput(stream, p, CHANNEL_STDOUT, session.stdout, req.opts.stdout),
      pumpOutput(stream, p, CHANNEL_STDERR, session.stderr, req.opts.stderr),
    ]);
    let status: Status;
    try {
      const code = await session.exited;
      status = kind === "exec" ? execStatus(code ?? 0, req.command) : successStatus();
    } catch (e) {
      status = internalErrorStatus(`${what}: ${errorMessage(e)}`);
    }
    over = true;
    if (stream.isReset) return;
    await writeStatus(status);
    stream.end();
  } catch (e) {
    over = true;
    session.close();
    if (!stream.isReset) {
      deps.log(`${where}: ${errorMessage(e)}`);
      stream.reset(errorMessage(e));
    }
  }
}

/** `kubectl exec`: runs header.command in the container. */
export const execHandler: StreamHandler = (stream, deps) => serve("exec", stream, deps);

/** `kubectl attach`: connects to the container's own stdin/stdout/stderr. */
export const attachHandler: StreamHandler = (stream, deps) => serve("attach", stream, deps);
