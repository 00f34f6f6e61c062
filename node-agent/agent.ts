// The node agent's thin loop: it registers the Node, renews its Lease, follows the pods
// bound to it (watch, or polling), and on every change or timer asks the pure sync step
// (sync.ts) what to do, applies that through the runtime and the API, and reports pod
// status when it changed. The control plane being unreachable stops reporting, never
// the pods: the loop keeps applying restart policies to the pods it last knew.

import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { type ApiClient, ApiStatusError, isStatus, type Obj } from "./client.ts";
import { LogIndex } from "./logs.ts";
import { containerConfigs } from "./podspec.ts";
import { recordProbe, runHttpGet, runTcpSocket } from "./probes.ts";
import { defaultServiceProxyAddress, ServiceProxy } from "./proxy/service-proxy.ts";
import type { ContainerStatus, Runtime } from "./runtime/types.ts";
import { ImagePullError, LABEL_ATTEMPT, LABEL_CONTAINER_NAME, LABEL_POD_UID } from "./runtime/types.ts";
import { podStatus, statusEqual } from "./status.ts";
import { HANDLERS } from "./streams/index.ts";
import { logHandler } from "./streams/log.ts";
import { proxyHandler } from "./streams/proxy.ts";
import type { StreamDeps } from "./streams/types.ts";
import { computeSync, type PodMemory, type SyncAction } from "./sync.ts";
import { TunnelClient } from "./tunnel.ts";

export const AGENT_VERSION = "v1.32.0-kubeflare.0";

export interface AgentOptions {
  nodeName: string;
  client: ApiClient;
  runtime: Runtime;
  stateDir: string;
  labels?: Record<string, string>;
  /** Poll the pod list every this many ms instead of watching (for proxies that cut long requests). */
  pollIntervalMs?: number;
  leaseIntervalMs?: number;
  statusIntervalMs?: number;
  /** Log file size before rotation (bytes). */
  maxLogBytes?: number;
  /**
   * The node tunnel (logs, exec, attach, port-forward, service relay): the control
   * plane's URL and the node credential. Without it the agent serves none of those.
   */
  tunnel?: { server: string; token: string; ca?: string; insecureSkipTLSVerify?: boolean; pingIntervalMs?: number };
  /**
   * The user-space service proxy (proxy/service-proxy.ts), default true. false: no
   * listeners, and service env vars take kubelet's clusterIP form.
   */
  serviceProxy?: boolean;
  /** Where cluster listeners bind and service env vars point (default: defaultServiceProxyAddress(runtime)). */
  serviceProxyAddress?: string;
  /** Endpoint IPs on other nodes this node can dial directly (default none: those go through the tunnel). */
  routableCIDRs?: string[];
  /** Where nodePort listeners bind (default: every address of the node). */
  nodePortAddress?: string;
  log?: (msg: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long a repeated event keeps adding to the first one's count (kubelet: 10 minutes). */
const EVENT_SERIES_MS = 10 * 60 * 1000;
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
const microTime = (d: Date) => d.toISOString().replace("Z", "000Z");

/** Exponential back-off with full jitter, capped. */
export function backoffDelay(attempt: number, baseMs = 500, maxMs = 30_000, rand = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.round(cap / 2 + (rand() * cap) / 2);
}

function primaryIPv4(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

export class Agent {
  private readonly o: AgentOptions;
  private readonly client: ApiClient;
  private readonly runtime: Runtime;
  private readonly pods = new Map<string, Obj>(); // uid → pod
  private readonly memory = new Map<string, PodMemory>();
  private readonly imageErrors: Record<string, { reason: string; message: string; at: number }> = {};
  private readonly reported = new Map<string, Obj>(); // uid → last status reported
  private readonly hostIP = primaryIPv4();
  private stopped = false;
  private wake: (() => void) | null = null;
  private dirty = true;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private watchHandle: { close(): void } | undefined;
  private readonly cmCache = new Map<string, Obj | null>();
  /** Pod IP per pod uid, from the runtime's sandbox. */
  private readonly podIPs = new Map<string, string>();
  private connected = false;
  /** Recent events by (object, type, reason, message): the series a repeat adds to. */
  private readonly eventSeries = new Map<string, { name: string; count: number; at: number }>();
  /** The pod list has been read at least once since the agent started. */
  private podsKnown = false;
  /** Services and endpoints cache, and the listeners (undefined until run()). */
  private proxy: ServiceProxy | undefined;
  private proxyStartedAt = 0;
  private readonly logIndex: LogIndex;
  /** The tunnel to the control plane (undefined when not configured). */
  readonly tunnel: TunnelClient | undefined;

  constructor(o: AgentOptions) {
    this.o = o;
    this.client = o.client;
    this.runtime = o.runtime;
    this.logIndex = new LogIndex(join(o.stateDir, "logs"));
    if (o.tunnel) {
      this.tunnel = new TunnelClient({
        ...o.tunnel,
        nodeName: o.nodeName,
        handlers: { ...HANDLERS, log: logHandler(this.logIndex), proxy: proxyHandler },
        deps: this.streamDeps(),
        log: (m) => this.log(m),
      });
    }
  }

  /** What the tunnel's stream handlers may use of the agent. */
  private streamDeps(): StreamDeps {
    const logsOf = (uid: string, container: string): string[] => {
      const dir = join(this.o.stateDir, "logs", uid, container);
      let files: string[] = [];
      try {
        files = readdirSync(dir);
      } catch {
        return [];
      }
      const attempts = files
        .map((f) => /^(\d+)\.log$/.exec(f)?.[1])
        .filter((a): a is string => a !== undefined)
        .map(Number)
        .sort((a, b) => b - a);
      return attempts.map((a) => join(dir, `${a}.log`));
    };
    return {
      nodeName: this.o.nodeName,
      runtime: this.runtime,
      stateDir: this.o.stateDir,
      podIP: (uid) => this.podIPs.get(uid),
      pod: (uid) => this.pods.get(uid),
      pods: () => [...this.pods.values()],
      findContainer: async (uid, container, previous) => {
        const mine = (await this.runtime.list())
          .filter((c) => c.labels[LABEL_POD_UID] === uid && c.labels[LABEL_CONTAINER_NAME] === container)
          .sort((a, b) => Number(b.labels[LABEL_ATTEMPT] ?? 0) - Number(a.labels[LABEL_ATTEMPT] ?? 0));
        return previous ? mine[1] : mine[0];
      },
      logFiles: (uid, container, previous) => {
        const current = logsOf(uid, container)[previous ? 1 : 0];
        if (!current) return [];
        return existsSync(`${current}.1`) ? [`${current}.1`, current] : [current];
      },
      log: (m) => this.log(m),
      stats: () => ({ tunnel: this.tunnel?.stats(), memory: process.memoryUsage() }),
    };
  }

  private log(msg: string): void {
    (this.o.log ?? ((m: string) => console.log(`[agent ${this.o.nodeName}] ${m}`)))(msg);
  }

  /** Runs until stop(). */
  async run(): Promise<void> {
    mkdirSync(join(this.o.stateDir, "logs"), { recursive: true });
    mkdirSync(join(this.o.stateDir, "volumes"), { recursive: true });
    this.startServiceProxy();
    await this.retry("register node", () => this.registerNode());
    const loops = [this.leaseLoop(), this.statusLoop(), this.podsLoop(), this.syncLoop(), this.logIndexLoop()];
    if (this.tunnel) loops.push(this.tunnel.run());
    await Promise.all(loops);
  }

  stop(): void {
    this.stopped = true;
    this.tunnel?.stop();
    void this.proxy?.stop();
    this.watchHandle?.close();
    this.kick();
  }

  private startServiceProxy(): void {
    this.proxy = new ServiceProxy({
      nodeName: this.o.nodeName,
      client: this.client,
      address: this.o.serviceProxyAddress ?? defaultServiceProxyAddress(this.runtime.name),
      nodePortAddress: this.o.nodePortAddress,
      routableCIDRs: this.o.routableCIDRs,
      openStream: (h) => this.tunnel?.open(h),
      listen: this.o.serviceProxy !== false,
      portsFile: join(this.o.stateDir, "service-proxy-ports.json"),
      log: (m) => this.log(`service proxy: ${m}`),
    });
    this.proxyStartedAt = Date.now();
    this.proxy.start();
  }

  /**
   * The service env vars of a container starting now, from the services known at this
   * moment. Right after the agent starts it waits for the first list of services (as
   * kubelet does), but never past 10 s after start: a pod does not wait on an
   * unreachable control plane.
   */
  private async serviceEnv(pod: Obj): Promise<Record<string, string>> {
    const p = this.proxy;
    if (!p) return {};
    if (!p.isSynced) await p.waitSynced(this.proxyStartedAt + 10_000 - Date.now());
    return p.serviceEnv(pod.metadata.namespace ?? "default", pod.spec?.enableServiceLinks !== false);
  }

  private kick(): void {
    this.dirty = true;
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (this.stopped) throw e;
        const d = backoffDelay(attempt);
        this.log(`${what} failed (${e instanceof Error ? e.message : String(e)}); retrying in ${d} ms`);
        await sleep(d);
      }
    }
  }

  // ---------------------------------------------------------------- node and lease

  private nodeStatus(): Obj {
    const now = rfc3339(new Date());
    const cpus = os.cpus().length;
    const mem = os.totalmem();
    const free = os.freemem();
    const cond = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    return {
      capacity: { cpu: String(cpus), memory: `${Math.floor(mem / 1024)}Ki`, pods: "110" },
      allocatable: { cpu: String(cpus), memory: `${Math.floor(mem / 1024)}Ki`, pods: "110" },
      addresses: [
        { type: "InternalIP", address: this.hostIP },
        { type: "Hostname", address: os.hostname() },
      ],
      conditions: [
        cond(
          "MemoryPressure",
          free / mem < 0.05 ? "True" : "False",
          free / mem < 0.05 ? "KubeletHasInsufficientMemory" : "KubeletHasSufficientMemory",
          "kubelet has sufficient memory available",
        ),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
      ],
      nodeInfo: {
        machineID: "",
        systemUUID: "",
        bootID: "",
        kernelVersion: os.release(),
        osImage: `${os.type()} ${os.release()}`,
        containerRuntimeVersion: `${this.runtime.name}://unknown`,
        kubeletVersion: AGENT_VERSION,
        kubeProxyVersion: "",
        operatingSystem: process.platform === "win32" ? "windows" : process.platform,
        architecture: process.arch === "x64" ? "amd64" : process.arch,
      },
      daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
    };
  }

  private async registerNode(): Promise<void> {
    const name = this.o.nodeName;
    const status = this.nodeStatus();
    status.nodeInfo.containerRuntimeVersion = `${this.runtime.name}://${await this.runtime.version()}`;
    const labels = {
      "kubernetes.io/hostname": name,
      "kubernetes.io/os": status.nodeInfo.operatingSystem,
      "kubernetes.io/arch": status.nodeInfo.architecture,
      "beta.kubernetes.io/os": status.nodeInfo.operatingSystem,
      "beta.kubernetes.io/arch": status.nodeInfo.architecture,
      ...(this.o.labels ?? {}),
    };
    try {
      await this.client.request("POST", "/api/v1/nodes", { apiVersion: "v1", kind: "Node", metadata: { name, labels }, spec: {}, status });
      this.log("registered node");
    } catch (e) {
      if (!isStatus(e, 409)) throw e;
      await this.client.request("PATCH", `/api/v1/nodes/${name}`, { metadata: { labels } }, "application/merge-patch+json");
      await this.client.request("PATCH", `/api/v1/nodes/${name}/status`, { status }, "application/merge-patch+json");
      this.log("node already registered; updated its status");
    }
    this.connected = true;
  }

  private async leaseLoop(): Promise<void> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.o.nodeName}`;
    while (!this.stopped) {
      try {
        const spec = { holderIdentity: this.o.nodeName, leaseDurationSeconds: 40, renewTime: microTime(new Date()) };
        try {
          await this.client.request("PATCH", path, { spec }, "application/merge-patch+json");
        } catch (e) {
          if (!isStatus(e, 404)) throw e;
          await this.client.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name: this.o.nodeName, namespace: "kube-node-lease" },
            spec,
          });
        }
        if (!this.connected) {
          this.connected = true;
          this.log("control plane reachable again");
          this.statusDue = true; // re-assert Ready: the node may have been marked Unknown
          this.kick(); // report the pod statuses that piled up
        }
      } catch (e) {
        if (this.connected) this.log(`lease renewal failed: ${e instanceof Error ? e.message : String(e)}`);
        this.connected = false;
      }
      await this.sleepUnlessStopped(this.o.leaseIntervalMs ?? 10_000);
    }
  }

  /** Set when the node's conditions must be reported now (after an outage). */
  private statusDue = true;

  /**
   * Node conditions: checked every 10 s, reported when they change, after the control
   * plane was unreachable (the node lifecycle controller may have marked the node
   * Unknown meanwhile), and at least every statusInterval.
   */
  private async statusLoop(): Promise<void> {
    let last = "";
    let lastSent = Date.now();
    const every = this.o.statusIntervalMs ?? 60_000;
    while (!this.stopped) {
      await this.sleepUnlessStopped(Math.min(10_000, every));
      if (this.stopped) break;
      const status = this.nodeStatus();
      const key = JSON.stringify(status.conditions.map((c: Obj) => [c.type, c.status]));
      if (!this.statusDue && key === last && Date.now() - lastSent < every) continue;
      try {
        await this.client.request(
          "PATCH",
          `/api/v1/nodes/${this.o.nodeName}/status`,
          { status: { conditions: status.conditions } },
          "application/strategic-merge-patch+json",
        );
        last = key;
        lastSent = Date.now();
        this.statusDue = false;
      } catch (e) {
        this.log(`node status update failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  private sleepUnlessStopped(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      const check = setInterval(() => {
        if (this.stopped) {
          clearTimeout(t);
          clearInterval(check);
          resolve();
        }
      }, 200);
      setTimeout(() => clearInterval(check), ms + 10);
    });
  }

  // ---------------------------------------------------------------- pods

  private podsPath(): string {
    return `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.o.nodeName}`)}`;
  }

  private replacePods(items: Obj[]): void {
    this.podsKnown = true;
    const seen = new Set<string>();
    for (const p of items) {
      seen.add(p.metadata.uid);
      this.pods.set(p.metadata.uid, p);
    }
    for (const uid of [...this.pods.keys()]) if (!seen.has(uid)) this.pods.delete(uid);
    this.kick();
  }

  private async podsLoop(): Promise<void> {
    let attempt = 0;
    let rv = "";
    while (!this.stopped) {
      try {
        if (!rv || this.o.pollIntervalMs) {
          const list = await this.client.get(this.podsPath());
          this.replacePods(list.items ?? []);
          rv = list.metadata?.resourceVersion ?? "";
          attempt = 0;
          if (this.o.pollIntervalMs) {
            await this.sleepUnlessStopped(this.o.pollIntervalMs);
            continue;
          }
        }
        const h = this.client.watch(
          `${this.podsPath()}&watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${rv}`,
          (ev) => {
            const o = ev.object;
            if (ev.type === "ERROR") {
              if (o?.code === 410) rv = ""; // compacted: relist
              return;
            }
            if (o?.metadata?.resourceVersion) rv = o.metadata.resourceVersion;
            if (ev.type === "BOOKMARK") return;
            if (ev.type === "DELETED") this.pods.delete(o.metadata.uid);
            else this.pods.set(o.metadata.uid, o);
            this.kick();
          },
        );
        this.watchHandle = h;
        await h.done;
        attempt = 0;
      } catch (e) {
        if (this.stopped) break;
        if (e instanceof ApiStatusError && e.code === 410) rv = "";
        const d = backoffDelay(attempt++);
        this.log(`pod watch failed (${e instanceof Error ? e.message : String(e)}); retrying in ${d} ms`);
        await this.sleepUnlessStopped(d);
      }
    }
  }

  // ---------------------------------------------------------------- sync

  private async syncLoop(): Promise<void> {
    while (!this.stopped) {
      this.dirty = false;
      let wakeAt: number | undefined;
      try {
        wakeAt = await this.syncOnce();
      } catch (e) {
        this.log(`sync failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        wakeAt = Date.now() + 1000;
      }
      if (this.stopped) break;
      if (this.dirty) continue;
      const wait = Math.max(50, Math.min((wakeAt ?? Date.now() + 2000) - Date.now(), 2000));
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(() => {
          this.wake = null;
          resolve();
        }, wait);
      });
      if (this.timer) clearTimeout(this.timer);
    }
  }

  private logPath(podUID: string, container: string, attempt: number): string {
    const dir = join(this.o.stateDir, "logs", podUID, container);
    mkdirSync(dir, { recursive: true });
    return join(dir, `${attempt}.log`);
  }

  private async lookup(kind: "configmaps" | "secrets", ns: string, name: string): Promise<Obj | null> {
    const key = `${kind}/${ns}/${name}`;
    try {
      const o = await this.client.get(`/api/v1/namespaces/${ns}/${kind}/${name}`);
      this.cmCache.set(key, o);
      return o;
    } catch (e) {
      if (isStatus(e, 404)) {
        this.cmCache.set(key, null);
        return null;
      }
      return this.cmCache.get(key) ?? null; // unreachable: use what we last saw
    }
  }

  private async syncOnce(): Promise<number | undefined> {
    // Until the first pod list arrives every running container would look like an orphan:
    // a restarted agent (or one that starts while the control plane is away) leaves them
    // alone until it knows which pods are still its own.
    if (!this.podsKnown) return Date.now() + 500;
    const now = Date.now();
    const containers = await this.runtime.list();
    const pods = [...this.pods.values()];
    const { actions, wakeAt } = computeSync({
      nodeName: this.o.nodeName,
      now,
      pods,
      containers,
      memory: this.memory,
      imageErrors: this.imageErrors,
    });
    // Each pod's actions run in order (a container whose image could not be had is not
    // started in the same batch); different pods proceed concurrently. Then every
    // changed pod status is reported, concurrently too.
    const failed = new Set<string>();
    const byPod = new Map<string, SyncAction[]>();
    for (const a of actions) {
      const uid =
        a.type === "start" || a.type === "finishDeletion" || a.type === "event" ? a.pod.metadata.uid : "podUID" in a ? a.podUID : "";
      let list = byPod.get(uid);
      if (!list) byPod.set(uid, (list = []));
      list.push(a);
    }
    await Promise.all(
      [...byPod.values()].map(async (list) => {
        for (const a of list) {
          if (a.type === "start" && failed.has(`${a.pod.metadata.uid}/${a.container}`)) continue;
          const ok = await this.apply(a, containers);
          if (!ok && a.type === "ensureImage") failed.add(`${a.podUID}/${a.container}`);
        }
      }),
    );
    await this.report(await this.runtime.list());
    this.rotateLogs();
    return wakeAt;
  }

  /** Applies one action; false if it failed (the next sync decides what to do about it). */
  private async apply(a: SyncAction, containers: ContainerStatus[]): Promise<boolean> {
    try {
      switch (a.type) {
        case "ensureImage": {
          const pod = this.pods.get(a.podUID);
          try {
            await this.runtime.ensureImage(a.image, a.policy as "Always" | "IfNotPresent" | "Never", {
              podAnnotations: pod?.metadata?.annotations ?? {},
              containerName: a.container,
            });
            delete this.imageErrors[`${a.podUID}/${a.container}`];
            if (pod) void this.event(pod, "Normal", "Pulled", `Container image "${a.image}" is ready`);
          } catch (e) {
            // computeSync turns this into the Failed/BackOff events and the waiting reason.
            const reason = e instanceof ImagePullError ? e.reason : "ErrImagePull";
            this.imageErrors[`${a.podUID}/${a.container}`] = {
              reason,
              message: e instanceof Error ? e.message : String(e),
              at: Date.now(),
            };
            return false;
          }
          break;
        }
        case "start":
          await this.startContainer(a.pod, a.container, a.attempt);
          break;
        case "stop":
          await this.runtime.stop(a.id, a.graceSeconds);
          break;
        case "remove":
          await this.runtime.remove(a.id);
          break;
        case "probe":
          await this.probe(a.podUID, a.container, a.kind, a.id, containers);
          break;
        case "finishDeletion": {
          const p = a.pod;
          try {
            await this.client.request("DELETE", `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`, {
              apiVersion: "v1",
              kind: "DeleteOptions",
              gracePeriodSeconds: 0,
              preconditions: { uid: p.metadata.uid },
            });
          } catch (e) {
            if (!isStatus(e, 404) && !isStatus(e, 409)) throw e;
          }
          this.pods.delete(p.metadata.uid);
          this.memory.delete(p.metadata.uid);
          this.reported.delete(p.metadata.uid);
          this.podIPs.delete(p.metadata.uid);
          rmSync(join(this.o.stateDir, "volumes", p.metadata.uid), { recursive: true, force: true });
          rmSync(join(this.o.stateDir, "logs", p.metadata.uid), { recursive: true, force: true });
          break;
        }
        case "removeSandbox":
          await this.runtime.removeSandbox(a.podUID);
          rmSync(join(this.o.stateDir, "volumes", a.podUID), { recursive: true, force: true });
          if (!this.pods.has(a.podUID)) rmSync(join(this.o.stateDir, "logs", a.podUID), { recursive: true, force: true });
          break;
        case "event":
          await this.event(a.pod, a.eventType, a.reason, a.message);
          break;
      }
    } catch (e) {
      this.log(`${a.type} failed: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
    return true;
  }

  private async startContainer(pod: Obj, name: string, attempt: number): Promise<void> {
    const uid = pod.metadata.uid;
    const ports = [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])].flatMap((c: Obj) =>
      (c.ports ?? [])
        .filter((p: Obj) => p.hostPort)
        .map((p: Obj) => ({ containerPort: p.containerPort, hostPort: p.hostPort, hostIP: p.hostIP, protocol: p.protocol ?? "TCP" })),
    );
    const sandbox = await this.runtime.ensureSandbox(uid, pod.metadata.name, pod.metadata.namespace, ports);
    this.podIPs.set(uid, sandbox.ip);
    const ns = pod.metadata.namespace;
    const needed = new Map<string, Obj | null>();
    for (const c of [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])]) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.configMapKeyRef ?? e.valueFrom?.secretKeyRef;
        if (ref?.name) needed.set(`${e.valueFrom.configMapKeyRef ? "configmaps" : "secrets"}/${ref.name}`, null);
      }
      for (const f of c.envFrom ?? []) {
        if (f.configMapRef?.name) needed.set(`configmaps/${f.configMapRef.name}`, null);
        if (f.secretRef?.name) needed.set(`secrets/${f.secretRef.name}`, null);
      }
    }
    for (const v of pod.spec.volumes ?? []) {
      if (v.configMap?.name) needed.set(`configmaps/${v.configMap.name}`, null);
      if (v.secret?.secretName) needed.set(`secrets/${v.secret.secretName}`, null);
    }
    for (const k of needed.keys()) {
      const [kind, n] = k.split("/");
      needed.set(k, await this.lookup(kind as "configmaps" | "secrets", ns, n));
    }
    const serviceEnv = await this.serviceEnv(pod);
    const cfg = containerConfigs(pod, {
      serviceEnv,
      nodeName: this.o.nodeName,
      podIP: sandbox.ip,
      hostIP: this.hostIP,
      configMaps: (_ns: string, n: string) => needed.get(`configmaps/${n}`) ?? undefined,
      secrets: (_ns: string, n: string) => needed.get(`secrets/${n}`) ?? undefined,
      volumeDir: (podUID: string, vol: string) => join(this.o.stateDir, "volumes", podUID, vol),
      logPath: (podUID: string, c: string, att: number) => this.logPath(podUID, c, att),
      attemptOf: (c: string) => (c === name ? attempt : 0),
    });
    const err = cfg.errors.find((x) => x.container === name);
    if (err) {
      // Reported like a pull error: waiting reason CreateContainerConfigError, retried.
      this.imageErrors[`${uid}/${name}`] = { reason: err.reason, message: err.message, at: Date.now() };
      return;
    }
    if (this.imageErrors[`${uid}/${name}`]?.reason === "CreateContainerConfigError") delete this.imageErrors[`${uid}/${name}`];
    for (const v of cfg.volumes) {
      mkdirSync(v.hostPath, { recursive: true });
      for (const [file, content] of Object.entries(v.files ?? {})) writeFileSync(join(v.hostPath, file), content);
    }
    const config = [...cfg.init, ...cfg.app].find((c) => c.name === name);
    if (!config) return;
    await this.runtime.start(config);
    const m = this.memory.get(uid);
    if (m && !m.startTime) m.startTime = Date.now();
    // Events are best effort and must not hold up the next start or the status report.
    void this.event(pod, "Normal", "Created", `Created container ${name}`);
    void this.event(pod, "Normal", "Started", `Started container ${name}`);
  }

  private async probe(
    podUID: string,
    container: string,
    kind: "liveness" | "readiness" | "startup",
    id: string,
    containers: ContainerStatus[],
  ): Promise<void> {
    const pod = this.pods.get(podUID);
    const spec = [...(pod?.spec?.containers ?? []), ...(pod?.spec?.initContainers ?? [])].find((c: Obj) => c.name === container);
    const probe = spec?.[`${kind}Probe`];
    if (!pod || !probe) return;
    const podIP = this.podIPs.get(podUID) ?? pod.status?.podIP ?? this.hostIP;
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    const resolvePort = (p: unknown) =>
      typeof p === "string" ? (spec.ports?.find((x: Obj) => x.name === p)?.containerPort ?? Number(p)) : (p as number);
    let res: { ok: boolean; message: string };
    if (probe.httpGet)
      res = await runHttpGet({ ...probe, httpGet: { ...probe.httpGet, port: resolvePort(probe.httpGet.port) } }, podIP, timeoutMs);
    else if (probe.tcpSocket)
      res = await runTcpSocket({ ...probe, tcpSocket: { ...probe.tcpSocket, port: resolvePort(probe.tcpSocket.port) } }, podIP, timeoutMs);
    else if (probe.exec) {
      try {
        const r = await this.runtime.exec(id, probe.exec.command ?? [], timeoutMs);
        res = { ok: r.exitCode === 0, message: r.output };
      } catch (e) {
        res = { ok: false, message: e instanceof Error ? e.message : String(e) };
      }
    } else return;
    void containers;
    const m = this.memory.get(podUID);
    if (!m) return;
    m.probes[container] ??= {};
    const prev = m.probes[container][kind] ?? { successes: 0, failures: 0, result: "unknown" as const };
    m.probes[container][kind] = recordProbe(probe, prev, res.ok, Date.now(), res.message);
    // Liveness and startup failures are reported by computeSync when it acts on them.
    if (!res.ok && kind === "readiness") await this.event(pod, "Warning", "Unhealthy", `Readiness probe failed: ${res.message}`);
  }

  private async report(containers: ContainerStatus[]): Promise<void> {
    if (!this.connected) return;
    const now = Date.now();
    // Reports go out concurrently: one slow PATCH does not hold up the other pods'.
    const pending: Promise<void>[] = [];
    for (const pod of this.pods.values()) {
      const uid = pod.metadata.uid;
      const mine = containers.filter((c) => c.labels["io.kubeflare.pod.uid"] === uid);
      const status = podStatus(
        pod,
        mine,
        this.memory.get(uid),
        this.imageErrors,
        { hostIP: this.hostIP, podIP: this.podIPs.get(uid) ?? pod.status?.podIP ?? this.hostIP, runtime: this.runtime.name },
        now,
      );
      const prev = this.reported.get(uid) ?? pod.status;
      if (prev && statusEqual(prev, status)) continue;
      pending.push(
        (async () => {
          try {
            const updated = await this.client.request(
              "PATCH",
              `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`,
              { metadata: { uid }, status },
              "application/merge-patch+json",
            );
            this.reported.set(uid, status);
            if (this.pods.has(uid)) this.pods.set(uid, updated);
          } catch (e) {
            if (isStatus(e, 404)) this.pods.delete(uid);
            else if (!(e instanceof ApiStatusError)) this.connected = false;
            this.log(
              `status report for ${pod.metadata.namespace}/${pod.metadata.name} failed: ${e instanceof Error ? e.message : String(e)}`,
            );
          }
        })(),
      );
    }
    await Promise.all(pending);
  }

  /**
   * Records an event. A repeat of the same event (object, type, reason, message) within
   * EVENT_SERIES_MS updates the first one's count and lastTimestamp instead of creating
   * another, as kubelet's event correlator does (`kubectl describe` shows "x5 over 2m").
   */
  private async event(pod: Obj, type: string, reason: string, message: string): Promise<void> {
    if (!this.connected) return;
    const now = Date.now();
    const ts = rfc3339(new Date(now));
    const ns = pod.metadata.namespace;
    const key = `${pod.metadata.uid}\u0000${type}\u0000${reason}\u0000${message}`;
    const seen = this.eventSeries.get(key);
    if (seen && now - seen.at < EVENT_SERIES_MS) {
      seen.count++;
      seen.at = now;
      try {
        await this.client.request(
          "PATCH",
          `/api/v1/namespaces/${ns}/events/${seen.name}`,
          { count: seen.count, lastTimestamp: ts },
          "application/merge-patch+json",
        );
        return;
      } catch (e) {
        if (!isStatus(e, 404)) return; // best effort
        // The event is gone (deleted or expired): start a new series below.
      }
    }
    const name = `${pod.metadata.name}.${now.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    this.eventSeries.delete(key);
    this.eventSeries.set(key, { name, count: 1, at: now });
    if (this.eventSeries.size > 4096) this.eventSeries.delete(this.eventSeries.keys().next().value as string);
    try {
      await this.client.request("POST", `/api/v1/namespaces/${ns}/events`, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name, namespace: ns },
        involvedObject: {
          kind: "Pod",
          apiVersion: "v1",
          name: pod.metadata.name,
          namespace: ns,
          uid: pod.metadata.uid,
        },
        reason,
        message,
        type,
        source: { component: "kubelet", host: this.o.nodeName },
        reportingComponent: "kubelet",
        reportingInstance: this.o.nodeName,
        firstTimestamp: ts,
        lastTimestamp: ts,
        count: 1,
      });
    } catch {
      // Events are best effort.
      this.eventSeries.delete(key);
    }
  }

  /** Samples log file sizes once a second: the times behind `kubectl logs --timestamps / --since`. */
  private async logIndexLoop(): Promise<void> {
    while (!this.stopped) {
      this.logIndex.tick();
      await sleep(1000);
    }
  }

  /** Copy-truncate rotation of every container log file: the runtime keeps appending to it. */
  private rotateLogs(): void {
    const max = this.o.maxLogBytes ?? 10 * 1024 * 1024;
    const root = join(this.o.stateDir, "logs");
    for (const uid of this.pods.keys()) {
      let containers: string[] = [];
      try {
        containers = readdirSync(join(root, uid));
      } catch {
        continue;
      }
      for (const c of containers) {
        let files: string[] = [];
        try {
          files = readdirSync(join(root, uid, c)).filter((f) => f.endsWith(".log"));
        } catch {
          continue;
        }
        for (const f of files) {
          const path = join(root, uid, c, f);
          try {
            if (statSync(path).size > max) {
              copyFileSync(path, `${path}.1`);
              truncateSync(path, 0);
              this.logIndex.rotated(path);
            }
          } catch {
            // gone meanwhile
          }
        }
      }
    }
  }
}
