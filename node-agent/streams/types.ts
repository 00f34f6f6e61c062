// What the agent's tunnel hands a stream handler. The control plane opens a stream with
// a header (workers/shared/tunnel.ts StreamHeader) whose `kind` picks the handler in
// node-agent/tunnel.ts; the handler answers with stream.reply({ code }) first (200, or
// 101 for a WebSocket bridge; an error code with reason/message ends the request with
// that Kubernetes Status), then reads and writes chunks, and ends the stream when done.
//
// Stream kinds and their headers (all set by the control plane, after authorization):
//   log          { namespace, pod, uid, container, follow, tailLines?, sinceSeconds?,
//                  sinceTime?, timestamps, previous, limitBytes? }     body: log bytes
//   exec         { namespace, pod, uid, container, command: string[], stdin, stdout,
//                  stderr, tty, protocol }  chunks = WebSocket messages of `protocol`
//   attach       as exec without command
//   portforward  { namespace, pod, uid, podIP, protocol, ports: number[] }
//                  protocol "SPDY/3.1+portforward.k8s.io": chunks are a byte stream
//                  (SPDY tunnelled over WebSocket); "v4.channel.k8s.io" /
//                  "portforward.k8s.io": chunks are channel messages
//   proxy        { method, path, query, headers }   nodes/proxy to the agent itself
//   http         { ip, port, method, path, headers: [k, v][] }  request body in, response
//                  out; reply carries { code, headers }
//   websocket    { ip, port, path, headers, protocols }  chunks: [0|1 (binary|text), ...data]
//   connect      { ip, port, protocol: "TCP" | "UDP" }  raw bytes (UDP: a chunk a datagram)

import type { TunnelStream } from "../../workers/shared/tunnel.ts";
import type { ContainerStatus, Runtime } from "../runtime/types.ts";

export interface StreamDeps {
  nodeName: string;
  runtime: Runtime;
  stateDir: string;
  /** The pod's IP as the runtime gave it (undefined: not running here). */
  podIP(uid: string): string | undefined;
  /** The pod object as last seen by the agent (undefined: not bound to this node). */
  pod(uid: string): Record<string, any> | undefined;
  /**
   * The runtime's container for a pod's container name: the newest instance, or with
   * previous the one before it (what `kubectl logs --previous` reads).
   */
  findContainer(uid: string, container: string, previous?: boolean): Promise<ContainerStatus | undefined>;
  /** Log file paths of a container instance, oldest first (rotated file, then current). */
  logFiles(uid: string, container: string, previous?: boolean): string[];
  log(msg: string): void;
  /** Every pod the agent runs (nodes/proxy/pods). */
  pods(): Record<string, any>[];
  /** The tunnel's and the process's figures (nodes/proxy/stats/tunnel). */
  stats(): Record<string, any>;
}

export type StreamHandler = (stream: TunnelStream, deps: StreamDeps) => Promise<void>;
