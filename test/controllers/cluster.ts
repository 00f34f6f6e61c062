// A simulated cluster for controller tests inside workerd: Node objects whose Leases
// the test renews, and a fake kubelet that marks bound pods Running and Ready and
// completes graceful deletions, as a node agent would. Stopping a node stops both.

import { api } from "../workers/helpers.ts";

export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 150): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const microTime = (d = new Date()) => d.toISOString().replace("Z", "000Z");

export class FakeCluster {
  readonly live = new Set<string>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private ips = 0;
  private busy = false;

  async addNode(name: string, opts: { cpu?: string; memory?: string; zone?: string } = {}): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    const r = await api("POST", "/api/v1/nodes", {
      metadata: { name, labels: { "kubernetes.io/hostname": name, ...(opts.zone ? { "topology.kubernetes.io/zone": opts.zone } : {}) } },
      status: {
        capacity: { cpu: opts.cpu ?? "4", memory: opts.memory ?? "8Gi", pods: "110" },
        allocatable: { cpu: opts.cpu ?? "4", memory: opts.memory ?? "8Gi", pods: "110" },
        conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", lastHeartbeatTime: now, lastTransitionTime: now }],
      },
    });
    if (r.status !== 201) throw new Error(`node ${name}: ${JSON.stringify(r.body)}`);
    await api("PUT", `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`, {
      metadata: { name, namespace: "kube-node-lease" },
      spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime() },
    });
    this.live.add(name);
  }

  /** The node's agent goes away: no lease renewals, no pod status, no deletions. */
  stopNode(name: string): void {
    this.live.delete(name);
  }

  start(everyMs = 250): void {
    this.timer = setInterval(() => void this.tick(), everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const name of this.live) {
        await api(
          "PATCH",
          `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`,
          { spec: { renewTime: microTime() } },
          { contentType: "application/merge-patch+json" },
        );
      }
      const pods = (await api("GET", "/api/v1/pods")).body.items ?? [];
      for (const p of pods) {
        const node = p.spec?.nodeName;
        if (!node || !this.live.has(node)) continue;
        const path = `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`;
        if (p.metadata.deletionTimestamp) {
          await api("DELETE", `${path}?gracePeriodSeconds=0`);
          continue;
        }
        if (p.status?.phase === "Running") continue;
        const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
        const conds = [
          { type: "PodScheduled", status: "True", lastTransitionTime: now },
          { type: "Initialized", status: "True", lastTransitionTime: now },
          { type: "ContainersReady", status: "True", lastTransitionTime: now },
          { type: "Ready", status: "True", lastTransitionTime: now },
        ];
        await api(
          "PATCH",
          `${path}/status`,
          { status: { phase: "Running", podIP: `10.244.0.${++this.ips % 250}`, hostIP: "192.0.2.1", startTime: now, conditions: conds } },
          { contentType: "application/merge-patch+json" },
        );
      }
    } finally {
      this.busy = false;
    }
  }
}

export async function podsOf(ns: string, selector: string): Promise<any[]> {
  return (await api("GET", `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(selector)}`)).body.items;
}

export const active = (pods: any[]) => pods.filter((p) => !p.metadata.deletionTimestamp);
