// The agent's service proxy (kube-proxy in user space): it follows Services and
// Endpoints cluster-wide, asks the pure plan (plan.ts) which listeners this node should
// have, and keeps sockets in step with it. TCP listeners accept, dial a backend (round
// robin, the next one when a dial fails) and pipe both ways; UDP listeners keep one
// session per client address, sent to one backend, until it is idle. Backends on other
// nodes that this node cannot route to are reached through the control plane: a
// "connect" stream over the node tunnel, which the target node's agent answers
// (streams/connect.ts). docs/architecture.md has the picture.
//
// Input comes from update(services, endpoints); start() feeds it from the API (list, then
// watch from the list's resourceVersion; relist on 410 or any error, with back-off).

import dgram from "node:dgram";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import type { StreamHeader, TunnelStream } from "../../workers/shared/tunnel.ts";
import type { ApiClient, Obj, WatchHandle } from "../client.ts";
import { serviceEnvVars } from "./envvars.ts";
import { pipeSocketStream, pipeSockets } from "./pipe.ts";
import { type Backend, cidrMatcher, desiredListeners, type ListenerSpec, type Protocol, protocolOf } from "./plan.ts";

export interface ServiceProxyOptions {
  nodeName: string;
  /** Source of services and endpoints for start(); without it, feed update() yourself. */
  client?: ApiClient;
  /** The service proxy address: cluster listeners bind here, and pods' service env vars point here. */
  address: string;
  /** Where nodePort listeners bind (default: every address of the node). */
  nodePortAddress?: string;
  /** Endpoint IPs on other nodes that this node can dial directly. */
  routableCIDRs?: string[];
  /** Opens a stream to the control plane over the node tunnel; undefined while it is down. */
  openStream?: (header: StreamHeader) => TunnelStream | undefined;
  /** false: keep the service cache (for env vars, in kubelet's clusterIP form) but open no listeners. */
  listen?: boolean;
  /** File that keeps the cluster listeners' ports across agent restarts (running pods hold them in env). */
  portsFile?: string;
  /** A UDP session without traffic this long is closed (default 30 s). */
  udpIdleTimeoutMs?: number;
  /** A backend that does not answer a dial within this long is skipped (default 5 s). */
  connectTimeoutMs?: number;
  /** Listeners that could not be opened are tried again after this long (default 10 s). */
  retryMs?: number;
  log?: (msg: string) => void;
}

/** What a listener looks like from outside (tests, debugging). */
export interface ListenerInfo {
  key: string;
  kind: ListenerSpec["kind"];
  protocol: Protocol;
  host: string;
  port: number;
  backends: Backend[];
}

interface UdpSession {
  backend?: Backend;
  /** Datagrams from the client before the backend is connected (a few, then dropped). */
  pending: Buffer[];
  send?: (msg: Buffer) => void;
  close: () => void;
  closed: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

interface Live {
  spec: ListenerSpec;
  host: string;
  port: number;
  rr: number;
  tcp?: net.Server;
  udp?: dgram.Socket;
  sessions: Map<string, UdpSession>;
  /** Accepted TCP connections (destroyed only by stop()). */
  conns: Set<net.Socket>;
}

const MAX_PENDING_DATAGRAMS = 16;

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));
const backendKey = (b: Backend) => `${b.ip}/${b.port}/${b.local}/${b.nodeName ?? ""}`;
const udpType = (host: string | undefined) => (host?.includes(":") ? "udp6" : "udp4");

/**
 * The default service proxy address for a runtime: for docker the docker0 bridge's
 * address (the gateway containers on the default network reach the host by), else
 * loopback (the process and fake runtimes run pods in the host's network).
 */
export function defaultServiceProxyAddress(runtime: string): string {
  if (runtime === "docker") {
    const docker0 = os.networkInterfaces().docker0?.find((a) => a.family === "IPv4");
    if (docker0) return docker0.address;
  }
  return "127.0.0.1";
}

function listenTcp(server: net.Server, port: number, host: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.off("listening", onListening);
      reject(e);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ port, host });
  });
}

function bindUdp(sock: dgram.Socket, port: number, host: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      sock.off("listening", onListening);
      reject(e);
    };
    const onListening = () => {
      sock.off("error", onError);
      resolve(sock.address().port);
    };
    sock.once("error", onError);
    sock.once("listening", onListening);
    sock.bind({ port, address: host ?? (udpType(host) === "udp6" ? "::" : "0.0.0.0") });
  });
}

export class ServiceProxy {
  private readonly o: ServiceProxyOptions;
  private readonly services = new Map<string, Obj>();
  private readonly endpoints = new Map<string, Obj>();
  private readonly live = new Map<string, Live>();
  /** Cluster listener key → port, kept for the service's lifetime (and across restarts with portsFile). */
  private readonly assigned = new Map<string, number>();
  private readonly isRoutable: (ip: string) => boolean;
  private readonly watches = new Set<WatchHandle>();
  private readonly wakers = new Set<() => void>();
  private stopped = false;
  private running: Promise<void> | undefined;
  private dirty = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Listeners that could not be opened (logged once, retried every retryMs). */
  private readonly failing = new Set<string>();
  private listed = { services: false, endpoints: false };
  private synced = false;
  private readonly syncWaiters = new Set<() => void>();

  constructor(o: ServiceProxyOptions) {
    this.o = o;
    this.isRoutable = cidrMatcher(o.routableCIDRs ?? []);
    if (o.portsFile && existsSync(o.portsFile)) {
      try {
        for (const [k, v] of Object.entries(JSON.parse(readFileSync(o.portsFile, "utf8"))))
          if (typeof v === "number") this.assigned.set(k, v);
      } catch {
        // unreadable: ports are chosen afresh
      }
    }
  }

  private log(msg: string): void {
    (this.o.log ?? ((m: string) => console.log(`[service-proxy ${this.o.nodeName}] ${m}`)))(msg);
  }

  // ------------------------------------------------------------------ input

  /** Follows services and endpoints through the API until stop(). */
  start(): void {
    if (!this.o.client) throw new Error("ServiceProxy.start needs a client");
    void this.follow("services", this.services);
    void this.follow("endpoints", this.endpoints);
  }

  /** Replaces the whole picture (what a relist of both does) and brings the listeners in step. */
  update(services: Obj[], endpoints: Obj[]): Promise<void> {
    this.replace(this.services, services);
    this.replace(this.endpoints, endpoints);
    this.listed = { services: true, endpoints: true };
    return this.reconcile();
  }

  private replace(store: Map<string, Obj>, items: Obj[]): void {
    store.clear();
    for (const o of items) if (o?.metadata?.name) store.set(`${o.metadata.namespace ?? "default"}/${o.metadata.name}`, o);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private async follow(resource: "services" | "endpoints", store: Map<string, Obj>): Promise<void> {
    const client = this.o.client as ApiClient;
    let rv = "";
    let attempt = 0;
    while (!this.stopped) {
      try {
        if (!rv) {
          const list = await client.get(`/api/v1/${resource}`);
          this.replace(store, list.items ?? []);
          rv = list.metadata?.resourceVersion ?? "";
          this.listed[resource] = true;
          void this.reconcile();
        }
        const h = client.watch(`/api/v1/${resource}?watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${rv}`, (ev) => {
          const o = ev.object;
          if (ev.type === "ERROR") {
            rv = ""; // 410 Gone (compacted) or another failure: relist
            h.close();
            return;
          }
          if (o?.metadata?.resourceVersion) rv = o.metadata.resourceVersion;
          if (ev.type === "BOOKMARK" || !o?.metadata?.name) return;
          const key = `${o.metadata.namespace ?? "default"}/${o.metadata.name}`;
          if (ev.type === "DELETED") store.delete(key);
          else store.set(key, o);
          void this.reconcile();
        });
        this.watches.add(h);
        try {
          await h.done;
        } finally {
          this.watches.delete(h);
        }
        attempt = 0;
      } catch (e) {
        if (this.stopped) break;
        rv = "";
        const cap = Math.min(30_000, 500 * 2 ** Math.min(attempt++, 16));
        const d = Math.round(cap / 2 + (Math.random() * cap) / 2);
        this.log(`${resource} watch failed (${errMsg(e)}); relisting in ${d} ms`);
        await this.sleep(d);
      }
    }
  }

  // ------------------------------------------------------------------ output

  /** Resolves true once services and endpoints were listed and the listeners applied, false after timeoutMs. */
  waitSynced(timeoutMs: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(t);
        this.syncWaiters.delete(ok);
        resolve(v);
      };
      const ok = () => done(true);
      const t = setTimeout(() => done(false), Math.max(0, timeoutMs));
      this.syncWaiters.add(ok);
    });
  }

  get isSynced(): boolean {
    return this.synced;
  }

  /**
   * The service environment variables of a container of a pod in `namespace` starting now:
   * in user-space mode the service proxy address and each port's listener (a service
   * whose listeners are not all open is left out); with listen: false, kubelet's
   * clusterIP form.
   */
  serviceEnv(namespace: string, enableServiceLinks: boolean): Record<string, string> {
    const services = [...this.services.values()];
    if (this.o.listen === false) return serviceEnvVars(services, { namespace, enableServiceLinks });
    return serviceEnvVars(services, {
      namespace,
      enableServiceLinks,
      address: (svc, port) => {
        const protocol = protocolOf(port);
        const l = this.live.get(`cluster/${svc.metadata.namespace ?? "default"}/${svc.metadata.name}/${port.name ?? ""}/${protocol}`);
        return l ? { host: l.host, port: l.port } : undefined;
      },
    });
  }

  listeners(): ListenerInfo[] {
    return [...this.live.values()].map((l) => ({
      key: l.spec.key,
      kind: l.spec.kind,
      protocol: l.spec.protocol,
      host: l.host,
      port: l.port,
      backends: l.spec.backends,
    }));
  }

  /** Closes every listener, connection and session, and stops following the API. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const h of this.watches) h.close();
    for (const w of [...this.wakers]) w();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.running?.catch(() => {});
    await Promise.all([...this.live.values()].map((l) => this.close(l, true)));
    this.live.clear();
  }

  // ------------------------------------------------------------------ reconcile

  /** Brings the listeners in step with the plan; runs are serialized, a change during one triggers another. */
  private reconcile(): Promise<void> {
    this.dirty = true;
    if (!this.running) {
      this.running = (async () => {
        while (this.dirty && !this.stopped) {
          this.dirty = false;
          await this.apply();
        }
      })().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async apply(): Promise<void> {
    const want =
      this.o.listen === false
        ? []
        : desiredListeners([...this.services.values()], [...this.endpoints.values()], {
            nodeName: this.o.nodeName,
            isRoutable: this.isRoutable,
          });
    const keys = new Set(want.map((s) => s.key));
    let assignedChanged = false;
    for (const key of this.failing) if (!keys.has(key)) this.failing.delete(key);
    for (const [key, l] of this.live) {
      if (keys.has(key)) continue;
      this.live.delete(key);
      if (this.assigned.delete(key)) assignedChanged = true;
      await this.close(l, false);
      this.log(`closed ${l.spec.protocol} ${l.host}:${l.port} (${key})`);
    }
    for (const key of [...this.assigned.keys()]) {
      // A recorded port of a service that is gone (from an earlier run) is forgotten once we have the full picture.
      if (!keys.has(key) && this.listed.services) {
        this.assigned.delete(key);
        assignedChanged = true;
      }
    }
    let failed = false;
    for (const spec of want) {
      if (this.stopped) return;
      const l = this.live.get(spec.key);
      if (l) {
        this.updateBackends(l, spec);
        continue;
      }
      try {
        const opened = await this.open(spec);
        this.live.set(spec.key, opened);
        this.failing.delete(spec.key);
        if (spec.kind === "cluster" && this.assigned.get(spec.key) !== opened.port) {
          this.assigned.set(spec.key, opened.port);
          assignedChanged = true;
        }
        this.log(
          `listening on ${spec.protocol} ${opened.host}:${opened.port} for ${spec.namespace}/${spec.service}:${spec.portName || spec.servicePort} (${spec.kind})`,
        );
      } catch (e) {
        failed = true;
        if (!this.failing.has(spec.key))
          this.log(`cannot listen for ${spec.key}: ${errMsg(e)}; retrying every ${this.o.retryMs ?? 10_000} ms`);
        this.failing.add(spec.key);
      }
    }
    if (assignedChanged && this.o.portsFile && this.o.listen !== false) {
      try {
        writeFileSync(this.o.portsFile, JSON.stringify(Object.fromEntries(this.assigned)));
      } catch (e) {
        this.log(`cannot record listener ports: ${errMsg(e)}`);
      }
    }
    if (failed && !this.retryTimer && !this.stopped) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.reconcile();
      }, this.o.retryMs ?? 10_000);
      this.retryTimer.unref?.();
    }
    if (!this.synced && this.listed.services && this.listed.endpoints) {
      this.synced = true;
      for (const w of [...this.syncWaiters]) w();
    }
  }

  /** New backends for new connections and sessions; established TCP connections are left alone. */
  private updateBackends(l: Live, spec: ListenerSpec): void {
    l.spec = spec;
    // UDP has no connections: a session whose backend left (not ready, or gone) ends now,
    // so the client's next datagram goes to a ready one (kube-proxy clears such conntrack entries).
    const keep = new Set(spec.backends.map(backendKey));
    for (const s of l.sessions.values()) if (s.backend && !keep.has(backendKey(s.backend))) s.close();
  }

  /** The ports to try for a cluster listener, best first; 0 means any. */
  private candidatePorts(spec: ListenerSpec): number[] {
    const out: number[] = [];
    const recorded = this.assigned.get(spec.key);
    if (recorded) out.push(recorded);
    const other = spec.protocol === "TCP" ? "UDP" : "TCP";
    const sibling = this.live.get(spec.key.replace(/[^/]+$/, other));
    if (sibling) out.push(sibling.port);
    if (spec.servicePort >= 1024) out.push(spec.servicePort);
    out.push(0);
    return [...new Set(out)];
  }

  private async open(spec: ListenerSpec): Promise<Live> {
    const host = spec.kind === "cluster" ? this.o.address : this.o.nodePortAddress;
    const ports = spec.kind === "cluster" ? this.candidatePorts(spec) : [spec.nodePort as number];
    let last: unknown;
    for (const port of ports) {
      const l: Live = { spec, host: host ?? "0.0.0.0", port, rr: 0, sessions: new Map(), conns: new Set() };
      try {
        if (spec.protocol === "TCP") {
          const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => void this.onConnection(l, c));
          l.port = await listenTcp(server, port, host);
          server.on("error", (e) => this.log(`listener ${spec.key}: ${errMsg(e)}`));
          l.tcp = server;
        } else {
          const sock = dgram.createSocket(udpType(host));
          l.port = await bindUdp(sock, port, host).catch((e) => {
            sock.close();
            throw e;
          });
          sock.on("message", (msg, rinfo) => this.onDatagram(l, msg, rinfo));
          sock.on("error", (e) => this.log(`listener ${spec.key}: ${errMsg(e)}`));
          l.udp = sock;
        }
        return l;
      } catch (e) {
        last = e;
        if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE" && (e as NodeJS.ErrnoException).code !== "EACCES") break;
      }
    }
    throw last;
  }

  private close(l: Live, all: boolean): Promise<void> {
    for (const s of [...l.sessions.values()]) s.close();
    return new Promise((resolve) => {
      if (l.tcp) {
        // Established connections go on until their ends close them, unless everything stops.
        if (all) for (const c of l.conns) c.destroy();
        l.tcp.close(() => resolve());
        if (!all) resolve();
      } else if (l.udp) l.udp.close(() => resolve());
      else resolve();
    });
  }

  /** The backends in the order to try them: round robin over new connections, then the rest. */
  private order(l: Live): Backend[] {
    const bs = l.spec.backends;
    if (bs.length === 0) return [];
    const start = l.rr++ % bs.length;
    return [...bs.slice(start), ...bs.slice(0, start)];
  }

  private connectHeader(l: Live, b: Backend): StreamHeader {
    return {
      kind: "connect",
      node: b.nodeName ?? "",
      namespace: l.spec.namespace,
      service: l.spec.service,
      ip: b.ip,
      port: b.port,
      protocol: l.spec.protocol,
    };
  }

  /** Opens a tunnel stream to a remote backend and waits for its 200; undefined if it fails. */
  private async dialRemote(l: Live, b: Backend): Promise<TunnelStream | undefined> {
    const stream = this.o.openStream?.(this.connectHeader(l, b));
    if (!stream) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<{ code: number; message: string }>((r) => {
      timer = setTimeout(() => r({ code: 504, message: "no answer" }), this.o.connectTimeoutMs ?? 5000);
    });
    const reply = await Promise.race([stream.waitReply(), timeout]);
    clearTimeout(timer);
    if (reply.code === 200) return stream;
    stream.reset(`connect failed: ${reply.message ?? reply.code}`);
    this.log(`${l.spec.key}: ${b.ip}:${b.port} on ${b.nodeName} via the tunnel: ${reply.code} ${reply.message ?? ""}`);
    return undefined;
  }

  // ------------------------------------------------------------------ TCP

  private dialLocal(b: Backend): Promise<net.Socket | undefined> {
    return new Promise((resolve) => {
      const s = net.connect({ host: b.ip, port: b.port, allowHalfOpen: true });
      const t = setTimeout(() => s.destroy(new Error("connect timeout")), this.o.connectTimeoutMs ?? 5000);
      const fail = () => {
        clearTimeout(t);
        resolve(undefined);
      };
      s.once("error", fail);
      s.once("connect", () => {
        clearTimeout(t);
        s.off("error", fail);
        resolve(s);
      });
    });
  }

  private async onConnection(l: Live, client: net.Socket): Promise<void> {
    l.conns.add(client);
    client.once("close", () => l.conns.delete(client));
    let clientGone = false;
    const gone = () => {
      clientGone = true;
    };
    client.on("error", gone);
    client.on("close", gone);
    for (const b of this.order(l)) {
      if (clientGone || this.stopped) break;
      if (b.local) {
        const up = await this.dialLocal(b);
        if (!up) continue;
        if (clientGone) {
          up.destroy();
          break;
        }
        client.off("error", gone);
        client.off("close", gone);
        client.resume();
        await pipeSockets(client, up);
        return;
      }
      const stream = await this.dialRemote(l, b);
      if (!stream) continue;
      if (clientGone) {
        stream.reset("client gone");
        break;
      }
      client.off("error", gone);
      client.off("close", gone);
      client.resume();
      await pipeSocketStream(client, stream);
      return;
    }
    client.destroy();
  }

  // ------------------------------------------------------------------ UDP

  private onDatagram(l: Live, msg: Buffer, client: dgram.RemoteInfo): void {
    const key = `${client.address}|${client.port}`;
    let s = l.sessions.get(key);
    if (!s) {
      if (l.spec.backends.length === 0) return; // no ready backend: dropped, as kube-proxy rejects it
      s = this.newSession(l, key, client);
    }
    s.timer?.refresh();
    if (s.send) s.send(msg);
    else if (s.pending.length < MAX_PENDING_DATAGRAMS) s.pending.push(msg);
  }

  private newSession(l: Live, key: string, client: dgram.RemoteInfo): UdpSession {
    const idle = this.o.udpIdleTimeoutMs ?? 30_000;
    const cleanups: (() => void)[] = [];
    const s: UdpSession = {
      pending: [],
      closed: false,
      close: () => {
        if (s.closed) return;
        s.closed = true;
        if (s.timer) clearTimeout(s.timer);
        if (l.sessions.get(key) === s) l.sessions.delete(key);
        for (const c of cleanups) c();
      },
    };
    s.timer = setTimeout(() => s.close(), idle);
    l.sessions.set(key, s);
    const reply = (m: Uint8Array) => {
      if (s.closed) return;
      s.timer?.refresh();
      l.udp?.send(m, client.port, client.address);
    };
    const ready = (b: Backend, send: (m: Buffer) => void) => {
      s.backend = b;
      s.send = send;
      for (const m of s.pending.splice(0)) send(m);
    };
    void (async () => {
      for (const b of this.order(l)) {
        if (s.closed) return;
        if (b.local) {
          const sock = dgram.createSocket(udpType(b.ip));
          const ok = await new Promise<boolean>((resolve) => {
            sock.once("error", () => resolve(false));
            sock.connect(b.port, b.ip, () => resolve(true));
          });
          if (!ok || s.closed) {
            sock.close();
            continue;
          }
          // An error later (ICMP port unreachable) ends the session: the next datagram picks the next backend.
          sock.on("error", () => s.close());
          sock.on("message", (m) => reply(m));
          cleanups.push(() => sock.close());
          ready(b, (m) => {
            try {
              sock.send(m);
            } catch {
              s.close();
            }
          });
          return;
        }
        const stream = await this.dialRemote(l, b);
        if (!stream) continue;
        if (s.closed) {
          stream.reset("session closed");
          return;
        }
        cleanups.push(() => stream.end());
        void (async () => {
          try {
            for await (const m of stream) reply(m);
          } catch {
            // reset: the session ends below
          }
          s.close();
        })();
        // One datagram a chunk (a UDP payload is below MAX_CHUNK). A datagram for which the
        // stream has no credit is dropped, as a full socket buffer would drop it.
        ready(b, (m) => {
          if (stream.window > 0) stream.write(m).catch(() => s.close());
        });
        return;
      }
      s.close();
    })();
    return s;
  }
}
