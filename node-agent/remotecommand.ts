// The Kubernetes remotecommand channel protocols of `kubectl exec` and `kubectl attach` over a
// WebSocket (kubelet's pkg/kubelet/cri/streaming/remotecommand and the apiserver's v5
// translator are the reference). Pure: bytes in, bytes out, no I/O.
//
// Every WebSocket message starts with a channel byte; the rest is that channel's data:
//   0 stdin   client -> server
//   1 stdout  server -> client
//   2 stderr  server -> client (never with a tty: it is merged into stdout there)
//   3 error   server -> client: once, at the end. v4 and v5: a JSON metav1.Status (Success,
//             or Failure; a command's non-zero exit is reason NonZeroExitCode with the code in
//             details.causes[{reason: "ExitCode"}]); v1-v3: the failure's message as text,
//             nothing on success
//   4 resize  client -> server: a stream of JSON {"Width":w,"Height":h} values (client-go
//             writes each with json.Encoder, so with a trailing newline; a value may in
//             principle be split over messages or several share one)
//   255 close v5 only, client -> server: [255, channel] half-closes that channel (kubectl sends
//             [255, 0] when its stdin reaches EOF)
// The server first sends an empty message on the lowest channel it writes (stdout, else
// stderr, else error), which tells the client the session is up. The session ends when the
// server closes the connection after the status. The base64 variants carry '0'+channel and
// base64 data in text messages.

export const CHANNEL_STDIN = 0;
export const CHANNEL_STDOUT = 1;
export const CHANNEL_STDERR = 2;
export const CHANNEL_ERROR = 3;
export const CHANNEL_RESIZE = 4;
export const CHANNEL_CLOSE = 255;

export const PROTOCOL_V5 = "v5.channel.k8s.io";
export const PROTOCOL_V4 = "v4.channel.k8s.io";
export const PROTOCOL_V4_BASE64 = "v4.base64.channel.k8s.io";
export const PROTOCOL_V1 = "channel.k8s.io";
export const PROTOCOL_V1_BASE64 = "base64.channel.k8s.io";

/** The subprotocols a server may select, best first (what the control plane negotiates). */
export const SUPPORTED_PROTOCOLS = [PROTOCOL_V5, PROTOCOL_V4, PROTOCOL_V4_BASE64, PROTOCOL_V1, PROTOCOL_V1_BASE64];

export interface ChannelProtocol {
  name: string;
  /** Channel bytes are '0'+n and data is base64 (text messages). */
  base64: boolean;
  /** The error channel carries a JSON Status (v4+), not a plain message. */
  statusJSON: boolean;
  /** The protocol defines the close signal [255, channel] (v5; decodeMessage accepts it on any binary one). */
  closeSignal: boolean;
}

/** The protocol of a negotiated subprotocol name; undefined if not supported. "" is channel.k8s.io. */
export function parseProtocol(name: string | undefined): ChannelProtocol | undefined {
  switch (name ?? "") {
    case PROTOCOL_V5:
      return { name: PROTOCOL_V5, base64: false, statusJSON: true, closeSignal: true };
    case PROTOCOL_V4:
      return { name: PROTOCOL_V4, base64: false, statusJSON: true, closeSignal: false };
    case PROTOCOL_V4_BASE64:
      return { name: PROTOCOL_V4_BASE64, base64: true, statusJSON: true, closeSignal: false };
    case "":
    case PROTOCOL_V1:
      return { name: PROTOCOL_V1, base64: false, statusJSON: false, closeSignal: false };
    case PROTOCOL_V1_BASE64:
      return { name: PROTOCOL_V1_BASE64, base64: true, statusJSON: false, closeSignal: false };
    default:
      return undefined;
  }
}

// ------------------------------------------------------------------ messages

/** One server -> client message: the channel byte, then data. */
export function encodeMessage(p: ChannelProtocol, channel: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (p.base64) return new TextEncoder().encode(String.fromCharCode(48 + channel) + Buffer.from(data).toString("base64"));
  const out = new Uint8Array(data.length + 1);
  out[0] = channel;
  out.set(data, 1);
  return out;
}

export type ClientMessage =
  | { type: "data"; channel: number; data: Uint8Array }
  | { type: "close"; channel: number }
  /** Nothing to act on (an empty message, or a malformed one: kubelet skips those too). */
  | { type: "ignore"; reason: string };

/** Parses one client -> server message. */
export function decodeMessage(p: ChannelProtocol, msg: Uint8Array): ClientMessage {
  if (msg.length === 0) return { type: "ignore", reason: "empty message" };
  if (p.base64) {
    const channel = msg[0] - 48;
    if (channel < 0 || channel > 9) return { type: "ignore", reason: `invalid channel character ${msg[0]}` };
    const text = new TextDecoder().decode(msg.subarray(1));
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return { type: "ignore", reason: "invalid base64 data" };
    return { type: "data", channel, data: new Uint8Array(Buffer.from(text, "base64")) };
  }
  // v5 defines the close signal; client-go's WebSocket client sends it whatever the version,
  // and no earlier protocol has a channel 255, so it is honoured on every binary protocol
  // (a v4 server that ignores it leaves `echo x | kubectl exec -i ... cat` hanging)
  if (msg[0] === CHANNEL_CLOSE) {
    if (msg.length !== 2) return { type: "ignore", reason: `close signal of ${msg.length} bytes (want 2)` };
    return { type: "close", channel: msg[1] };
  }
  return { type: "data", channel: msg[0], data: msg.subarray(1) };
}

/**
 * Splits data for one channel into messages of at most maxMessage bytes (channel byte
 * included), so that each fits the tunnel's chunk size.
 */
export function encodeMessages(p: ChannelProtocol, channel: number, data: Uint8Array, maxMessage: number): Uint8Array[] {
  // base64 grows 4/3: keep its input a multiple of 3 bytes so no piece carries padding mid-stream
  const room = p.base64 ? Math.max(3, Math.floor(((maxMessage - 1) * 3) / 4 / 3) * 3) : Math.max(1, maxMessage - 1);
  if (data.length <= room) return [encodeMessage(p, channel, data)];
  const out: Uint8Array[] = [];
  for (let off = 0; off < data.length; off += room) out.push(encodeMessage(p, channel, data.subarray(off, off + room)));
  return out;
}

// ------------------------------------------------------------------ session options

export interface SessionOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

function flag(v: unknown): boolean {
  return v === true || v === "1" || v === "true" || v === 1;
}

/**
 * The streams a session uses, from the request's stdin/stdout/stderr/tty (booleans, or the
 * query's "1"/"true"). As kubelet: a tty has no separate stderr (it is dropped, not an error),
 * and at least one of stdin, stdout, stderr is required (the string is the error otherwise).
 */
export function sessionOptions(req: Record<string, unknown>): SessionOptions | string {
  const o: SessionOptions = { stdin: flag(req.stdin), stdout: flag(req.stdout), stderr: flag(req.stderr), tty: flag(req.tty) };
  if (o.tty && o.stderr) o.stderr = false;
  if (!o.stdin && !o.stdout && !o.stderr) return "you must specify at least 1 of stdin, stdout, stderr";
  return o;
}

/** The channel of the "session is up" empty message: the lowest one the server writes. */
export function firstChannel(o: SessionOptions): number {
  if (o.stdout) return CHANNEL_STDOUT;
  if (o.stderr) return CHANNEL_STDERR;
  return CHANNEL_ERROR;
}

// ------------------------------------------------------------------ statuses

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** metav1.Status as encoding/json writes it (field order kept: metadata is always there). */
export interface Status {
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: { causes?: StatusCause[] };
  code?: number;
}

export const REASON_NON_ZERO_EXIT_CODE = "NonZeroExitCode";
export const CAUSE_EXIT_CODE = "ExitCode";

export function successStatus(): Status {
  return { metadata: {}, status: "Success" };
}

/** Go's %v of a []string: "[sh -c exit 3]". */
function goStrings(a: string[]): string {
  return `[${a.join(" ")}]`;
}

/**
 * What kubelet (with containerd's or CRI-O's streaming server) sends when the command exits
 * with a non-zero code. The client parses the cause's message as a uint8, so the code is
 * taken modulo 256 (Linux exit codes are 0..255 anyway).
 */
export function exitCodeStatus(exitCode: number, command: string[]): Status {
  const code = ((Math.trunc(exitCode) % 256) + 256) % 256;
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: error executing command ${goStrings(command)}, exit code ${code}`,
    reason: REASON_NON_ZERO_EXIT_CODE,
    details: { causes: [{ reason: CAUSE_EXIT_CODE, message: String(code) }] },
  };
}

/** apierrors.NewInternalError: what kubelet sends when the exec or attach itself failed. */
export function internalErrorStatus(message: string): Status {
  return {
    metadata: {},
    status: "Failure",
    message: `Internal error occurred: ${message}`,
    reason: "InternalError",
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** The status of an exec that ended with exitCode. */
export function execStatus(exitCode: number, command: string[]): Status {
  return exitCode === 0 ? successStatus() : exitCodeStatus(exitCode, command);
}

/**
 * The error channel's message for a status; null when nothing is sent (v1-v3 send only
 * failures, as their plain message).
 */
export function encodeStatus(p: ChannelProtocol, s: Status): Uint8Array | null {
  if (p.statusJSON) return encodeMessage(p, CHANNEL_ERROR, new TextEncoder().encode(JSON.stringify(s)));
  if (s.status === "Success") return null;
  return encodeMessage(p, CHANNEL_ERROR, new TextEncoder().encode(s.message ?? "error"));
}

// ------------------------------------------------------------------ resize

export interface TerminalSize {
  width: number;
  height: number;
}

/** Resize input kept at most (a client sends ~30-byte values; more is garbage). */
const RESIZE_BUFFER_LIMIT = 4096;

/**
 * Decodes the resize channel: a stream of JSON objects (Go's json.Decoder on the server side),
 * whatever the message boundaries. Field names match case-insensitively, as in Go; values
 * that are not objects with numeric sizes are skipped, as is input past a small limit.
 */
export class ResizeDecoder {
  private buf = "";
  private readonly dec = new TextDecoder();

  push(data: Uint8Array): TerminalSize[] {
    this.buf += this.dec.decode(data, { stream: true });
    const out: TerminalSize[] = [];
    for (;;) {
      const start = this.buf.search(/\S/);
      if (start < 0) {
        this.buf = "";
        break;
      }
      const end = jsonValueEnd(this.buf, start);
      if (end === undefined) {
        this.buf = this.buf.slice(start);
        if (this.buf.length > RESIZE_BUFFER_LIMIT) this.buf = "";
        break;
      }
      const text = this.buf.slice(start, end);
      this.buf = this.buf.slice(end);
      const size = parseSize(text);
      if (size) out.push(size);
    }
    return out;
  }
}

/** Where the JSON value starting at start ends (exclusive); undefined if it is incomplete. */
function jsonValueEnd(s: string, start: number): number | undefined {
  const first = s[start];
  if (first !== "{" && first !== "[") {
    // a scalar: up to the next whitespace or structural character
    const m = /[\s{}[\],]/.exec(s.slice(start + 1));
    return m ? start + 1 + m.index : undefined;
  }
  let depth = 0;
  let inString = false;
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return undefined;
}

function parseSize(text: string): TerminalSize | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
  // a missing field is 0, as Go decodes it
  let width: unknown = 0;
  let height: unknown = 0;
  for (const [k, val] of Object.entries(v)) {
    if (k.toLowerCase() === "width") width = val;
    else if (k.toLowerCase() === "height") height = val;
  }
  const ok = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 0xffff;
  if (!ok(width) || !ok(height)) return undefined;
  return { width, height };
}
