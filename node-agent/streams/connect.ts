// Stream kind "connect": another node's service proxy reaches a backend on this node
// through the control plane (header { ip, port, protocol: "TCP" | "UDP" }). The handler
// dials ip:port from here, answers { code: 200 } once connected (or 502
// ServiceUnavailable with the dial error), then pipes: TCP as a byte stream with
// backpressure and half-close, UDP one datagram a chunk until the opener ends the stream.

import dgram from "node:dgram";
import net from "node:net";
import type { TunnelStream } from "../../workers/shared/tunnel.ts";
import { pipeSocketStream } from "../proxy/pipe.ts";
import type { StreamHandler } from "./types.ts";

const DIAL_TIMEOUT_MS = 5000;

function refuse(stream: TunnelStream, message: string): void {
  stream.reply({ code: 502, reason: "ServiceUnavailable", message });
  stream.end();
}

function dialTcp(ip: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: ip, port, allowHalfOpen: true });
    const t = setTimeout(() => s.destroy(new Error(`dial ${ip}:${port}: timed out`)), DIAL_TIMEOUT_MS);
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.once("connect", () => {
      clearTimeout(t);
      s.removeAllListeners("error");
      resolve(s);
    });
  });
}

async function udp(stream: TunnelStream, ip: string, port: number): Promise<void> {
  const sock = dgram.createSocket(net.isIPv6(ip) ? "udp6" : "udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.connect(port, ip, () => {
        sock.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    sock.close();
    refuse(stream, `dial udp ${ip}:${port}: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  stream.reply({ code: 200 });
  // Replies without credit are dropped, as a full socket buffer would drop them.
  sock.on("message", (m) => {
    if (stream.window > 0) stream.write(m).catch(() => {});
  });
  // ICMP port unreachable and the like: the opener's session ends and picks another backend.
  sock.on("error", (e) => stream.reset(e.message));
  try {
    for await (const m of stream) sock.send(m);
  } catch {
    // reset
  } finally {
    sock.close();
    stream.end();
  }
}

export const connectHandler: StreamHandler = async (stream, deps) => {
  const h = stream.header;
  const ip = typeof h.ip === "string" ? h.ip : "";
  const port = typeof h.port === "number" ? h.port : 0;
  const protocol = h.protocol === "UDP" ? "UDP" : h.protocol === "TCP" || h.protocol === undefined ? "TCP" : "";
  if (net.isIP(ip) === 0 || !Number.isInteger(port) || port <= 0 || port > 65535 || !protocol) {
    stream.reply({ code: 400, reason: "BadRequest", message: "connect needs ip, port and protocol TCP or UDP" });
    stream.reset("bad request");
    return;
  }
  if (protocol === "UDP") return udp(stream, ip, port);
  let sock: net.Socket;
  try {
    sock = await dialTcp(ip, port);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    deps.log(`connect ${ip}:${port}: ${message}`);
    refuse(stream, `dial tcp ${ip}:${port}: ${message}`);
    return;
  }
  stream.reply({ code: 200 });
  await pipeSocketStream(sock, stream);
};
