import { describe, expect, it } from "vitest";
import {
  CHANNEL_ERROR,
  CHANNEL_STDERR,
  CHANNEL_STDOUT,
  decodeMessage,
  encodeMessage,
  encodeMessages,
  encodeStatus,
  execStatus,
  exitCodeStatus,
  firstChannel,
  internalErrorStatus,
  PROTOCOL_V1,
  PROTOCOL_V4,
  PROTOCOL_V4_BASE64,
  PROTOCOL_V5,
  parseProtocol,
  ResizeDecoder,
  sessionOptions,
  successStatus,
} from "../../node-agent/remotecommand.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const v5 = parseProtocol(PROTOCOL_V5)!;
const v4 = parseProtocol(PROTOCOL_V4)!;
const v4b64 = parseProtocol(PROTOCOL_V4_BASE64)!;
const v1 = parseProtocol(PROTOCOL_V1)!;

describe("remotecommand protocols", () => {
  it("knows v5, v4, their base64 and v1 forms; the empty subprotocol is channel.k8s.io; others are refused", () => {
    expect(v5).toMatchObject({ base64: false, statusJSON: true, closeSignal: true });
    expect(v4).toMatchObject({ base64: false, statusJSON: true, closeSignal: false });
    expect(v4b64).toMatchObject({ base64: true, statusJSON: true });
    expect(parseProtocol("")?.name).toBe(PROTOCOL_V1);
    expect(v1.statusJSON).toBe(false);
    expect(parseProtocol("v6.channel.k8s.io")).toBeUndefined();
    expect(parseProtocol("SPDY/3.1")).toBeUndefined();
  });

  it("a message is the channel byte then the data; base64 uses '0'+channel and base64 text", () => {
    expect([...encodeMessage(v5, CHANNEL_STDOUT, enc.encode("hi"))]).toEqual([1, 104, 105]);
    expect([...encodeMessage(v5, CHANNEL_STDOUT)]).toEqual([1]);
    expect(dec.decode(encodeMessage(v4b64, CHANNEL_STDERR, enc.encode("foo\n")))).toBe("2Zm9vCg==");
  });

  it("decodes stdin, resize and v5's close signal; empty and malformed messages are ignored", () => {
    expect(decodeMessage(v5, new Uint8Array([0, 104, 105]))).toEqual({ type: "data", channel: 0, data: enc.encode("hi") });
    expect(decodeMessage(v5, new Uint8Array([255, 0]))).toEqual({ type: "close", channel: 0 });
    expect(decodeMessage(v5, new Uint8Array([255, 0, 1])).type).toBe("ignore");
    expect(decodeMessage(v5, new Uint8Array([])).type).toBe("ignore");
    // client-go's WebSocket client sends the close signal on v4 too: honoured there as well
    expect(decodeMessage(v4, new Uint8Array([255, 0]))).toEqual({ type: "close", channel: 0 });
    expect(decodeMessage(v4b64, enc.encode("0Zm9vCg=="))).toEqual({ type: "data", channel: 0, data: enc.encode("foo\n") });
    expect(decodeMessage(v4b64, enc.encode("0!!")).type).toBe("ignore");
  });

  it("splits large output into messages that fit the tunnel's chunk size", () => {
    const data = new Uint8Array(10_000).fill(7);
    const msgs = encodeMessages(v5, CHANNEL_STDOUT, data, 4096);
    expect(msgs.every((m) => m.length <= 4096 && m[0] === CHANNEL_STDOUT)).toBe(true);
    expect(msgs.reduce((n, m) => n + m.length - 1, 0)).toBe(10_000);
    const b64 = encodeMessages(v4b64, CHANNEL_STDOUT, data, 4096);
    expect(b64.every((m) => m.length <= 4096)).toBe(true);
    const back = Buffer.concat(b64.map((m) => Buffer.from(dec.decode(m.subarray(1)), "base64")));
    expect(back.length).toBe(10_000);
  });
});

describe("session options", () => {
  it("a tty has no stderr; at least one stream is required; query-style flags are accepted", () => {
    expect(sessionOptions({ stdin: true, stdout: true, stderr: true, tty: true })).toEqual({
      stdin: true,
      stdout: true,
      stderr: false,
      tty: true,
    });
    expect(sessionOptions({ stdin: false, stdout: false, stderr: false, tty: true })).toBe(
      "you must specify at least 1 of stdin, stdout, stderr",
    );
    expect(sessionOptions({ stdout: "1", stderr: "true" })).toEqual({ stdin: false, stdout: true, stderr: true, tty: false });
  });

  it("the session-is-up message goes to stdout, else stderr, else the error channel", () => {
    expect(firstChannel({ stdin: true, stdout: true, stderr: true, tty: false })).toBe(CHANNEL_STDOUT);
    expect(firstChannel({ stdin: true, stdout: false, stderr: true, tty: false })).toBe(CHANNEL_STDERR);
    expect(firstChannel({ stdin: true, stdout: false, stderr: false, tty: false })).toBe(CHANNEL_ERROR);
  });
});

describe("statuses", () => {
  it("success is a bare Success status, byte for byte as Go marshals it", () => {
    expect(dec.decode(encodeStatus(v5, successStatus())!.subarray(1))).toBe('{"metadata":{},"status":"Success"}');
    expect(execStatus(0, ["true"])).toEqual(successStatus());
  });

  it("a non-zero exit is NonZeroExitCode with the code as the ExitCode cause, as kubelet sends it", () => {
    const msg = encodeStatus(v4, exitCodeStatus(3, ["sh", "-c", "exit 3"]))!;
    expect(msg[0]).toBe(CHANNEL_ERROR);
    expect(dec.decode(msg.subarray(1))).toBe(
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",' +
        '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
    );
    // the client parses the code as a uint8
    expect(exitCodeStatus(256 + 7, ["x"]).details?.causes?.[0].message).toBe("7");
  });

  it("v1 sends only a failure's message, as text", () => {
    expect(encodeStatus(v1, successStatus())).toBeNull();
    expect(dec.decode(encodeStatus(v1, internalErrorStatus("boom"))!)).toBe("\u0003Internal error occurred: boom");
    expect(internalErrorStatus("boom")).toMatchObject({ status: "Failure", reason: "InternalError", code: 500 });
  });
});

describe("ResizeDecoder", () => {
  it("decodes client-go's newline-terminated values, several in one message or one split over messages", () => {
    const d = new ResizeDecoder();
    expect(d.push(enc.encode('{"Width":80,"Height":24}\n'))).toEqual([{ width: 80, height: 24 }]);
    expect(d.push(enc.encode('{"Width":100,"Hei'))).toEqual([]);
    expect(d.push(enc.encode('ght":30}\n{"width":1,"height":2}'))).toEqual([
      { width: 100, height: 30 },
      { width: 1, height: 2 },
    ]);
  });

  it("skips values that are not sizes and recovers from garbage", () => {
    const d = new ResizeDecoder();
    expect(d.push(enc.encode('[1,2] 7 {"Width":-1,"Height":2} {"Width":"x"} {"Width":5}'))).toEqual([{ width: 5, height: 0 }]);
    expect(d.push(enc.encode(`{"a":"${"x".repeat(5000)}`))).toEqual([]);
    expect(d.push(enc.encode('{"Width":9,"Height":9}'))).toEqual([{ width: 9, height: 9 }]);
  });
});
