import { describe, expect, it } from "vitest";
import { applyDefaults, defaultImagePullPolicy, defaultPodStatusOnCreate, podQOSClass } from "../../workers/shared/defaults.ts";
import { RESOURCES, type ResourceInfo } from "../../workers/shared/resources.ts";
import { validateCreate, validateUpdate } from "../../workers/shared/validation.ts";

type Obj = Record<string, any>;

function info(kind: string): ResourceInfo {
  const i = RESOURCES.find((r) => r.kind === kind);
  if (!i) throw new Error(`no resource ${kind}`);
  return i;
}

function defaulted(kind: string, obj: Obj): Obj {
  const o = structuredClone(obj);
  applyDefaults(info(kind), o);
  return o;
}

const minimalPod = (): Obj => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web", namespace: "default" },
  spec: { containers: [{ name: "web", image: "nginx:1.27" }] },
});

const NOT_READY = { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 };
const UNREACHABLE = { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 };

describe("imagePullPolicy default", () => {
  it.each([
    ["nginx", "Always"],
    ["nginx:latest", "Always"],
    ["nginx:1.27", "IfNotPresent"],
    ["library/nginx:stable", "IfNotPresent"],
    ["registry.example.com:5000/team/app", "Always"],
    ["registry.example.com:5000/team/app:v2", "IfNotPresent"],
    ["registry.example.com:5000/team/app:latest", "Always"],
    ["nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "IfNotPresent"],
    ["nginx:1.27@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "IfNotPresent"],
    ["nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "Always"],
    ["localhost:5000/app", "Always"],
    ["", "IfNotPresent"],
  ])("is %s → %s", (image, policy) => {
    expect(defaultImagePullPolicy(image)).toBe(policy);
  });

  it("is filled on containers and init containers", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: { containers: [{ name: "a", image: "nginx" }], initContainers: [{ name: "b", image: "busybox:1.36" }] },
    });
    expect(pod.spec.containers[0].imagePullPolicy).toBe("Always");
    expect(pod.spec.initContainers[0].imagePullPolicy).toBe("IfNotPresent");
  });

  it("keeps a user-set policy", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: { containers: [{ name: "a", image: "nginx", imagePullPolicy: "Never" }] },
    });
    expect(pod.spec.containers[0].imagePullPolicy).toBe("Never");
  });
});

describe("Pod defaults", () => {
  it("fills the pod spec the way kube-apiserver does", () => {
    const pod = defaulted("Pod", minimalPod());
    expect(pod.spec).toEqual({
      containers: [
        {
          name: "web",
          image: "nginx:1.27",
          imagePullPolicy: "IfNotPresent",
          terminationMessagePath: "/dev/termination-log",
          terminationMessagePolicy: "File",
          resources: {},
        },
      ],
      restartPolicy: "Always",
      dnsPolicy: "ClusterFirst",
      schedulerName: "default-scheduler",
      terminationGracePeriodSeconds: 30,
      securityContext: {},
      enableServiceLinks: true,
      serviceAccountName: "default",
      serviceAccount: "default",
      priority: 0,
      preemptionPolicy: "PreemptLowerPriority",
      tolerations: [NOT_READY, UNREACHABLE],
    });
  });

  it("produces a pod that validates", () => {
    expect(validateCreate(info("Pod"), defaulted("Pod", minimalPod()))).toEqual([]);
  });

  it("keeps values the user set", () => {
    const user: Obj = {
      metadata: { name: "p", namespace: "d" },
      spec: {
        restartPolicy: "Never",
        dnsPolicy: "Default",
        schedulerName: "custom",
        terminationGracePeriodSeconds: 0,
        securityContext: { runAsUser: 1000 },
        enableServiceLinks: false,
        serviceAccountName: "builder",
        priority: 7,
        containers: [
          {
            name: "a",
            image: "x",
            terminationMessagePath: "/tmp/log",
            terminationMessagePolicy: "FallbackToLogsOnError",
            resources: { requests: { cpu: "1" } },
            ports: [{ containerPort: 53, protocol: "UDP" }],
          },
        ],
      },
    };
    const pod = defaulted("Pod", user);
    expect(pod.spec).toMatchObject(user.spec);
    expect(pod.spec.serviceAccount).toBe("builder");
  });

  it("treats empty strings as unset, as Go does", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: { restartPolicy: "", containers: [{ name: "a", image: "x", imagePullPolicy: "" }] },
    });
    expect(pod.spec.restartPolicy).toBe("Always");
    expect(pod.spec.containers[0].imagePullPolicy).toBe("Always");
  });

  it("defaults container port protocols to TCP", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: { containers: [{ name: "a", image: "x", ports: [{ containerPort: 80 }, { containerPort: 53, protocol: "UDP" }] }] },
    });
    expect(pod.spec.containers[0].ports).toEqual([
      { containerPort: 80, protocol: "TCP" },
      { containerPort: 53, protocol: "UDP" },
    ]);
  });

  it("sets hostPort to containerPort on host-network pods", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: { hostNetwork: true, containers: [{ name: "a", image: "x", ports: [{ containerPort: 80 }] }] },
    });
    expect(pod.spec.containers[0].ports[0].hostPort).toBe(80);
  });

  it("defaults probes and their httpGet", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: {
        containers: [
          {
            name: "a",
            image: "x",
            livenessProbe: { httpGet: { port: 8080 } },
            readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 5, failureThreshold: 0 },
            startupProbe: { exec: { command: ["true"] }, timeoutSeconds: 3 },
            lifecycle: { preStop: { httpGet: { port: 80, path: "/quit" } } },
          },
        ],
      },
    });
    const c = pod.spec.containers[0];
    expect(c.livenessProbe).toEqual({
      httpGet: { port: 8080, path: "/", scheme: "HTTP" },
      timeoutSeconds: 1,
      periodSeconds: 10,
      successThreshold: 1,
      failureThreshold: 3,
    });
    expect(c.readinessProbe).toEqual({
      tcpSocket: { port: 80 },
      timeoutSeconds: 1,
      periodSeconds: 5,
      successThreshold: 1,
      failureThreshold: 3,
    });
    expect(c.startupProbe).toMatchObject({ timeoutSeconds: 3, periodSeconds: 10 });
    expect(c.lifecycle.preStop.httpGet).toEqual({ port: 80, path: "/quit", scheme: "HTTP" });
  });

  it("defaults volume modes and fills emptyDir on a volume with no source", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: {
        containers: [{ name: "a", image: "x" }],
        volumes: [
          { name: "cm", configMap: { name: "c" } },
          { name: "s", secret: { secretName: "s", defaultMode: 256 } },
          { name: "pr", projected: { sources: [] } },
          { name: "dw", downwardAPI: {} },
          { name: "e" },
        ],
      },
    });
    expect(pod.spec.volumes).toEqual([
      { name: "cm", configMap: { name: "c", defaultMode: 420 } },
      { name: "s", secret: { secretName: "s", defaultMode: 256 } },
      { name: "pr", projected: { sources: [], defaultMode: 420 } },
      { name: "dw", downwardAPI: { defaultMode: 420 } },
      { name: "e", emptyDir: {} },
    ]);
  });

  it("copies limits into missing requests", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: { containers: [{ name: "a", image: "x", resources: { limits: { cpu: "1", memory: "1Gi" }, requests: { cpu: "500m" } } }] },
    });
    expect(pod.spec.containers[0].resources.requests).toEqual({ cpu: "500m", memory: "1Gi" });
  });

  describe("default tolerations", () => {
    const withTolerations = (tolerations: unknown[]): Obj =>
      defaulted("Pod", { metadata: { name: "p", namespace: "d" }, spec: { containers: [{ name: "a", image: "x" }], tolerations } });

    it("keeps existing tolerations and adds both", () => {
      const t = { key: "dedicated", operator: "Equal", value: "gpu", effect: "NoSchedule" };
      expect(withTolerations([t]).spec.tolerations).toEqual([t, NOT_READY, UNREACHABLE]);
    });

    it("does not add not-ready when the pod already tolerates it", () => {
      const t = { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 60 };
      expect(withTolerations([t]).spec.tolerations).toEqual([t, UNREACHABLE]);
    });

    it("does not add either when the pod tolerates everything", () => {
      expect(withTolerations([{ operator: "Exists" }]).spec.tolerations).toEqual([{ operator: "Exists" }]);
    });

    it("counts a toleration with no effect as tolerating NoExecute", () => {
      expect(withTolerations([{ key: "node.kubernetes.io/unreachable", operator: "Exists" }]).spec.tolerations).toEqual([
        { key: "node.kubernetes.io/unreachable", operator: "Exists" },
        NOT_READY,
      ]);
    });

    it("still adds it when the existing one is for another effect", () => {
      const t = { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoSchedule" };
      expect(withTolerations([t]).spec.tolerations).toEqual([t, NOT_READY, UNREACHABLE]);
    });

    it("is idempotent", () => {
      const once = defaulted("Pod", minimalPod());
      const twice = defaulted("Pod", once);
      expect(twice).toEqual(once);
    });
  });

  it.each([
    ["system-node-critical", 2000001000],
    ["system-cluster-critical", 2000000000],
  ])("gives priorityClassName %s its priority", (cls, priority) => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: { priorityClassName: cls, containers: [{ name: "a", image: "x" }] },
    });
    expect(pod.spec.priority).toBe(priority);
  });

  it("leaves priority unset for other priority classes", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: { priorityClassName: "high", containers: [{ name: "a", image: "x" }] },
    });
    expect(pod.spec.priority).toBeUndefined();
  });

  it("uses the deprecated serviceAccount field when serviceAccountName is unset", () => {
    const pod = defaulted("Pod", {
      metadata: { name: "p", namespace: "d" },
      spec: { serviceAccount: "legacy", containers: [{ name: "a", image: "x" }] },
    });
    expect(pod.spec.serviceAccountName).toBe("legacy");
  });

  it("lets a defaulted pod pass an update that re-sends the user's original spec", () => {
    const stored = defaulted("Pod", minimalPod());
    const resent = defaulted("Pod", { ...minimalPod(), spec: { containers: [{ name: "web", image: "nginx:1.28" }] } });
    expect(validateUpdate(info("Pod"), resent, stored)).toEqual([]);
  });

  it("does nothing to non-objects", () => {
    expect(() => applyDefaults(info("Pod"), null as unknown as Obj)).not.toThrow();
    const odd: Obj = { spec: "nope" };
    applyDefaults(info("Pod"), odd);
    expect(odd).toEqual({ spec: "nope" });
  });
});

describe("Pod status on create", () => {
  it("sets phase Pending and the QoS class", () => {
    const pod = defaulted("Pod", minimalPod());
    defaultPodStatusOnCreate(pod);
    expect(pod.status).toEqual({ phase: "Pending", qosClass: "BestEffort" });
  });

  it("keeps a phase or class already set", () => {
    const pod: Obj = { ...minimalPod(), status: { phase: "Running", qosClass: "Guaranteed" } };
    defaultPodStatusOnCreate(pod);
    expect(pod.status).toEqual({ phase: "Running", qosClass: "Guaranteed" });
  });

  const c = (resources?: Obj): Obj => ({ name: "c", image: "x", ...(resources ? { resources } : {}) });
  const full = { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "1", memory: "1Gi" } };

  it.each<[string, Obj, string]>([
    ["no resources", { containers: [c()] }, "BestEffort"],
    ["empty resources", { containers: [c({})] }, "BestEffort"],
    ["zero requests", { containers: [c({ requests: { cpu: "0" } })] }, "BestEffort"],
    [
      "only non-QoS resources",
      { containers: [c({ requests: { "nvidia.com/gpu": "1" }, limits: { "nvidia.com/gpu": "1" } })] },
      "BestEffort",
    ],
    ["a cpu request only", { containers: [c({ requests: { cpu: "100m" } })] }, "Burstable"],
    [
      "requests below limits",
      { containers: [c({ requests: { cpu: "500m", memory: "1Gi" }, limits: { cpu: "1", memory: "1Gi" } })] },
      "Burstable",
    ],
    ["a cpu limit only", { containers: [c({ limits: { cpu: "1" } })] }, "Burstable"],
    ["equal requests and limits", { containers: [c(full)] }, "Guaranteed"],
    [
      "equal amounts in other units",
      { containers: [c({ requests: { cpu: "1000m", memory: "1024Mi" }, limits: { cpu: "1", memory: "1Gi" } })] },
      "Guaranteed",
    ],
    ["limits only (requests default to limits)", { containers: [c({ limits: { cpu: "2", memory: "2Gi" } })] }, "Guaranteed"],
    ["one guaranteed and one best-effort container", { containers: [c(full), c()] }, "Burstable"],
    ["two guaranteed containers", { containers: [c(full), c(full)] }, "Guaranteed"],
    [
      "a guaranteed container and a burstable init container",
      { containers: [c(full)], initContainers: [c({ requests: { cpu: "1" } })] },
      "Burstable",
    ],
    ["no spec", {}, "BestEffort"],
  ])("classifies a pod with %s as %s", (_, spec, qos) => {
    expect(podQOSClass(spec)).toBe(qos);
    const pod: Obj = { metadata: { name: "p", namespace: "d" }, spec };
    applyDefaults(info("Pod"), pod);
    defaultPodStatusOnCreate(pod);
    expect(pod.status.qosClass).toBe(qos);
  });
});

describe("pod template defaults", () => {
  const deployment = (): Obj => ({
    metadata: { name: "web", namespace: "default" },
    spec: {
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "web", image: "nginx", ports: [{ containerPort: 80 }] }] },
      },
    },
  });

  it.each(["Deployment", "ReplicaSet"])("fill the %s template's pod spec but not pod-only fields", (kind) => {
    const o = defaulted(kind, deployment());
    expect(o.spec.template.spec).toEqual({
      containers: [
        {
          name: "web",
          image: "nginx",
          ports: [{ containerPort: 80, protocol: "TCP" }],
          imagePullPolicy: "Always",
          terminationMessagePath: "/dev/termination-log",
          terminationMessagePolicy: "File",
          resources: {},
        },
      ],
      restartPolicy: "Always",
      dnsPolicy: "ClusterFirst",
      schedulerName: "default-scheduler",
      terminationGracePeriodSeconds: 30,
      securityContext: {},
    });
  });

  it.each(["Deployment", "ReplicaSet"])("produce a %s that validates", (kind) => {
    expect(validateCreate(info(kind), defaulted(kind, deployment()))).toEqual([]);
  });
});

describe("Deployment defaults", () => {
  const base = (spec: Obj = {}): Obj => ({ metadata: { name: "d", namespace: "default" }, spec });

  it("fills replicas, strategy, revisionHistoryLimit and progressDeadlineSeconds", () => {
    const d = defaulted("Deployment", base());
    expect(d.spec).toEqual({
      replicas: 1,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    });
    expect(d.spec.minReadySeconds).toBeUndefined();
  });

  it("keeps user values, including replicas 0", () => {
    const spec = {
      replicas: 0,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1 } },
      revisionHistoryLimit: 2,
      progressDeadlineSeconds: 60,
    };
    const d = defaulted("Deployment", base(structuredClone(spec)));
    expect(d.spec).toEqual({ ...spec, strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: "25%" } } });
  });

  it("adds no rollingUpdate to a Recreate strategy", () => {
    const d = defaulted("Deployment", base({ strategy: { type: "Recreate" } }));
    expect(d.spec.strategy).toEqual({ type: "Recreate" });
  });
});

describe("ReplicaSet defaults", () => {
  it("fills replicas 1 and keeps a user value", () => {
    expect(defaulted("ReplicaSet", { metadata: {}, spec: {} }).spec).toEqual({ replicas: 1 });
    expect(defaulted("ReplicaSet", { metadata: {}, spec: { replicas: 0 } }).spec.replicas).toBe(0);
  });
});

describe("Service defaults", () => {
  const svc = (spec: Obj): Obj => ({ metadata: { name: "s", namespace: "default" }, spec });

  it("fills a ClusterIP service", () => {
    const s = defaulted(
      "Service",
      svc({ selector: { app: "web" }, ports: [{ port: 80 }, { port: 53, protocol: "UDP", targetPort: "dns" }] }),
    );
    expect(s.spec).toEqual({
      selector: { app: "web" },
      type: "ClusterIP",
      sessionAffinity: "None",
      ports: [
        { port: 80, protocol: "TCP", targetPort: 80 },
        { port: 53, protocol: "UDP", targetPort: "dns" },
      ],
      internalTrafficPolicy: "Cluster",
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
    });
  });

  it("keeps user values", () => {
    const spec = {
      type: "NodePort",
      sessionAffinity: "ClientIP",
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
      ports: [{ port: 80, targetPort: 8080, protocol: "TCP" }],
      internalTrafficPolicy: "Local",
      externalTrafficPolicy: "Local",
      ipFamilies: ["IPv6"],
      ipFamilyPolicy: "PreferDualStack",
    };
    expect(defaulted("Service", svc(structuredClone(spec))).spec).toEqual(spec);
  });

  it("defaults externalTrafficPolicy on NodePort and LoadBalancer services", () => {
    expect(defaulted("Service", svc({ type: "NodePort", ports: [{ port: 80 }] })).spec.externalTrafficPolicy).toBe("Cluster");
    const lb = defaulted("Service", svc({ type: "LoadBalancer", ports: [{ port: 80 }] }));
    expect(lb.spec).toMatchObject({ externalTrafficPolicy: "Cluster", allocateLoadBalancerNodePorts: true });
    expect(defaulted("Service", svc({ ports: [{ port: 80 }] })).spec.externalTrafficPolicy).toBeUndefined();
  });

  it("defaults the ClientIP affinity timeout", () => {
    const s = defaulted("Service", svc({ sessionAffinity: "ClientIP", ports: [{ port: 80 }] }));
    expect(s.spec.sessionAffinityConfig).toEqual({ clientIP: { timeoutSeconds: 10800 } });
  });

  it("fills clusterIPs from clusterIP and picks the family from it", () => {
    const s = defaulted("Service", svc({ clusterIP: "fd00::10", ports: [{ port: 80 }] }));
    expect(s.spec).toMatchObject({ clusterIPs: ["fd00::10"], ipFamilies: ["IPv6"] });
  });

  it("leaves IP families and traffic policy off ExternalName services", () => {
    const s = defaulted("Service", svc({ type: "ExternalName", externalName: "db.example.com" }));
    expect(s.spec).toEqual({ type: "ExternalName", externalName: "db.example.com", sessionAffinity: "None" });
  });

  it("produces a service that validates", () => {
    expect(validateCreate(info("Service"), defaulted("Service", svc({ ports: [{ port: 80 }] })))).toEqual([]);
  });
});

describe("Secret defaults", () => {
  it("fills type Opaque and keeps a user type", () => {
    expect(defaulted("Secret", { metadata: {} }).type).toBe("Opaque");
    expect(defaulted("Secret", { metadata: {}, type: "" }).type).toBe("Opaque");
    expect(defaulted("Secret", { metadata: {}, type: "kubernetes.io/tls" }).type).toBe("kubernetes.io/tls");
  });
});

describe("Namespace defaults", () => {
  it("adds the kubernetes finalizer and phase Active", () => {
    const ns = defaulted("Namespace", { metadata: { name: "a" } });
    expect(ns).toEqual({ metadata: { name: "a" }, spec: { finalizers: ["kubernetes"] }, status: { phase: "Active" } });
  });

  it("keeps user finalizers and phase", () => {
    const ns = defaulted("Namespace", { metadata: { name: "a" }, spec: { finalizers: [] }, status: { phase: "Terminating" } });
    expect(ns).toEqual({ metadata: { name: "a" }, spec: { finalizers: [] }, status: { phase: "Terminating" } });
  });

  it("does not re-add the finalizer to a namespace being deleted", () => {
    const ns = defaulted("Namespace", {
      metadata: { name: "a", deletionTimestamp: "2024-01-01T00:00:00Z" },
      spec: {},
      status: { phase: "Terminating" },
    });
    expect(ns.spec).toEqual({});
  });
});

describe("other kinds", () => {
  it("defaults Node allocatable to capacity and nothing else", () => {
    const node = defaulted("Node", { metadata: { name: "n" }, status: { capacity: { cpu: "4", pods: "110" } } });
    expect(node).toEqual({
      metadata: { name: "n" },
      status: { capacity: { cpu: "4", pods: "110" }, allocatable: { cpu: "4", pods: "110" } },
    });
    expect(defaulted("Node", { metadata: { name: "n" }, spec: {} })).toEqual({ metadata: { name: "n" }, spec: {} });
  });

  it("defaults Endpoints port protocols to TCP", () => {
    const ep = defaulted("Endpoints", {
      metadata: {},
      subsets: [{ addresses: [{ ip: "10.0.0.1" }], ports: [{ port: 80 }, { port: 53, protocol: "UDP" }] }],
    });
    expect(ep.subsets[0].ports).toEqual([
      { port: 80, protocol: "TCP" },
      { port: 53, protocol: "UDP" },
    ]);
  });

  it.each(["ConfigMap", "Lease", "Event", "ServiceAccount"])("leaves a %s unchanged", (kind) => {
    const obj = { metadata: { name: "x", namespace: "d" }, data: { a: "b" }, spec: {} };
    expect(defaulted(kind, obj)).toEqual(obj);
  });
});
