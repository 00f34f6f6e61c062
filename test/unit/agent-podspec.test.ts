import { describe, expect, it } from "vitest";
import { containerConfigs, expand, type PodSpecOptions } from "../../node-agent/podspec.ts";
import {
  LABEL_ATTEMPT,
  LABEL_CONTAINER_NAME,
  LABEL_NODE,
  LABEL_POD_NAME,
  LABEL_POD_NAMESPACE,
  LABEL_POD_UID,
  LABEL_SPEC_HASH,
} from "../../node-agent/runtime/types.ts";
import { containerSpecHash } from "../../node-agent/sync.ts";

type Obj = Record<string, any>;

// ---------------------------------------------------------------------------------------
// Fixtures

const b64 = (s: string): string => Buffer.from(s).toString("base64");

const CONFIG_MAPS: Record<string, Obj> = {
  "default/app-config": { data: { LOG_LEVEL: "debug", MODE: "fast", "app.yaml": "a: 1\n" }, binaryData: { "logo.bin": b64("\x00\x01") } },
  "other/app-config": { data: { LOG_LEVEL: "info" } },
};
const SECRETS: Record<string, Obj> = {
  "default/db": { data: { password: b64("s3cret"), user: b64("admin") } },
};

function newContainer(name: string, extra: Obj = {}): Obj {
  return { name, image: `registry.example/${name}:1.0`, imagePullPolicy: "IfNotPresent", ...extra };
}

function newPod(
  o: { containers?: Obj[]; initContainers?: Obj[]; volumes?: Obj[]; namespace?: string; spec?: Obj; annotations?: Obj } = {},
): Obj {
  return {
    metadata: {
      name: "web-7d9f",
      namespace: o.namespace ?? "default",
      uid: "uid-web",
      labels: { app: "web", tier: "front" },
      annotations: o.annotations ?? { "example.com/owner": "team-a" },
    },
    spec: {
      nodeName: "node-1",
      serviceAccountName: "web-sa",
      containers: o.containers ?? [newContainer("app")],
      ...(o.initContainers ? { initContainers: o.initContainers } : {}),
      ...(o.volumes ? { volumes: o.volumes } : {}),
      ...o.spec,
    },
  };
}

function options(extra: Partial<PodSpecOptions> = {}): PodSpecOptions {
  return {
    nodeName: "node-1",
    podIP: "10.88.0.7",
    hostIP: "192.168.1.10",
    configMaps: (ns, name) => CONFIG_MAPS[`${ns}/${name}`],
    secrets: (ns, name) => SECRETS[`${ns}/${name}`],
    volumeDir: (uid, vol) => `/var/lib/kubeflare/pods/${uid}/volumes/${vol}`,
    logPath: (uid, c, attempt) => `/var/log/kubeflare/${uid}/${c}/${attempt}.log`,
    attemptOf: () => 0,
    ...extra,
  };
}

/** The env of the single app container, or the errors. */
function envOf(env: Obj[], extra: Obj = {}, opts: Partial<PodSpecOptions> = {}, namespace?: string): Record<string, string> | string {
  const r = containerConfigs(newPod({ containers: [newContainer("app", { env, ...extra })], namespace }), options(opts));
  return r.errors.length ? r.errors.map((e) => `${e.reason}: ${e.message}`).join("; ") : r.app[0].env;
}

// ---------------------------------------------------------------------------------------

describe("expand", () => {
  const vars = { A: "alpha", B: "beta", EMPTY: "" };
  const table: [input: string, expected: string][] = [
    ["plain", "plain"],
    ["$(A)", "alpha"],
    ["x-$(A)-$(B)-y", "x-alpha-beta-y"],
    ["$(UNDEFINED)", "$(UNDEFINED)"],
    ["$$(A)", "$(A)"],
    ["$$", "$"],
    ["$(A", "$(A"],
    ["$A", "$A"],
    ["trailing $", "trailing $"],
    ["$(EMPTY)!", "!"],
  ];
  it.each(table)("expand(%j) = %j", (input, expected) => {
    expect(expand(input, vars)).toBe(expected);
  });
});

describe("containerConfigs: env", () => {
  const table: [desc: string, env: Obj[], expected: Record<string, string> | string][] = [
    ["plain values", [{ name: "A", value: "1" }, { name: "B" }], { A: "1", B: "" }],
    [
      "$(VAR) references earlier variables only",
      [
        { name: "A", value: "x$(B)" },
        { name: "B", value: "b" },
        { name: "C", value: "$(A)-$(B)" },
      ],
      { A: "x$(B)", B: "b", C: "x$(B)-b" },
    ],
    [
      "fieldRef",
      [
        { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
        { name: "NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        { name: "UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } },
        { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: "NONE", valueFrom: { fieldRef: { fieldPath: "metadata.labels['nope']" } } },
        { name: "OWNER", valueFrom: { fieldRef: { fieldPath: "metadata.annotations['example.com/owner']" } } },
        { name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
        { name: "SA", valueFrom: { fieldRef: { fieldPath: "spec.serviceAccountName" } } },
        { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
        { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
        { name: "LABELS", valueFrom: { fieldRef: { fieldPath: "metadata.labels" } } },
      ],
      {
        POD: "web-7d9f",
        NS: "default",
        UID: "uid-web",
        APP: "web",
        NONE: "",
        OWNER: "team-a",
        NODE: "node-1",
        SA: "web-sa",
        POD_IP: "10.88.0.7",
        HOST_IP: "192.168.1.10",
        LABELS: 'app="web"\ntier="front"',
      },
    ],
    [
      "unsupported fieldPath",
      [{ name: "X", valueFrom: { fieldRef: { fieldPath: "spec.schedulerName" } } }],
      "CreateContainerConfigError: unsupported fieldPath: spec.schedulerName",
    ],
    ["configMapKeyRef", [{ name: "LEVEL", valueFrom: { configMapKeyRef: { name: "app-config", key: "LOG_LEVEL" } } }], { LEVEL: "debug" }],
    ["secretKeyRef (decoded)", [{ name: "PW", valueFrom: { secretKeyRef: { name: "db", key: "password" } } }], { PW: "s3cret" }],
    [
      "missing config map",
      [{ name: "X", valueFrom: { configMapKeyRef: { name: "nope", key: "k" } } }],
      'CreateContainerConfigError: configmap "nope" not found',
    ],
    [
      "missing key in a config map",
      [{ name: "X", valueFrom: { configMapKeyRef: { name: "app-config", key: "nope" } } }],
      "CreateContainerConfigError: couldn't find key nope in ConfigMap default/app-config",
    ],
    [
      "missing secret",
      [{ name: "X", valueFrom: { secretKeyRef: { name: "nope", key: "k" } } }],
      'CreateContainerConfigError: secret "nope" not found',
    ],
    [
      "missing key in a secret",
      [{ name: "X", valueFrom: { secretKeyRef: { name: "db", key: "token" } } }],
      "CreateContainerConfigError: couldn't find key token in Secret default/db",
    ],
    [
      "optional refs that do not resolve are left out",
      [
        { name: "A", valueFrom: { configMapKeyRef: { name: "nope", key: "k", optional: true } } },
        { name: "B", valueFrom: { configMapKeyRef: { name: "app-config", key: "nope", optional: true } } },
        { name: "C", valueFrom: { secretKeyRef: { name: "nope", key: "k", optional: true } } },
        { name: "D", valueFrom: { secretKeyRef: { name: "db", key: "nope", optional: true } } },
        { name: "E", value: "e" },
      ],
      { E: "e" },
    ],
    [
      "resourceFieldRef with divisor",
      [
        { name: "CPU", valueFrom: { resourceFieldRef: { resource: "limits.cpu" } } },
        { name: "CPU_M", valueFrom: { resourceFieldRef: { resource: "limits.cpu", divisor: "1m" } } },
        { name: "MEM_MI", valueFrom: { resourceFieldRef: { resource: "limits.memory", divisor: "1Mi" } } },
        { name: "REQ_MEM", valueFrom: { resourceFieldRef: { resource: "requests.memory" } } },
      ],
      { CPU: "1", CPU_M: "500", MEM_MI: "256", REQ_MEM: "134217728" },
    ],
  ];
  it.each(table)("%s", (_desc, env, expected) => {
    const resources = { limits: { cpu: "500m", memory: "256Mi" }, requests: { memory: "128Mi" } };
    expect(envOf(env, { resources })).toEqual(expected);
  });

  it("looks config maps up in the pod's namespace", () => {
    expect(envOf([{ name: "L", valueFrom: { configMapKeyRef: { name: "app-config", key: "LOG_LEVEL" } } }], {}, {}, "other")).toEqual({
      L: "info",
    });
  });

  it("takes envFrom first (with prefix, later sources win), then env overrides", () => {
    const env = envOf([{ name: "MODE", value: "slow" }], {
      envFrom: [
        { configMapRef: { name: "app-config" } },
        { prefix: "DB_", secretRef: { name: "db" } },
        { configMapRef: { name: "nope", optional: true } },
      ],
    });
    expect(env).toEqual({ LOG_LEVEL: "debug", MODE: "slow", "app.yaml": "a: 1\n", DB_password: "s3cret", DB_user: "admin" });
  });

  it("skips envFrom keys that are not valid variable names", () => {
    const cm = { data: { "GOOD.key-1": "1", "a=b": "2" } };
    const env = envOf([], { envFrom: [{ configMapRef: { name: "x" } }] }, { configMaps: () => cm });
    expect(env).toEqual({ "GOOD.key-1": "1" });
  });

  it("fails on a missing envFrom source unless optional", () => {
    expect(envOf([], { envFrom: [{ secretRef: { name: "nope" } }] })).toBe('CreateContainerConfigError: secret "nope" not found');
  });

  it("adds service env with the lowest precedence and expands it", () => {
    const env = envOf(
      [
        { name: "URL", value: "http://$(DB_SERVICE_HOST):5432" },
        { name: "DB_SERVICE_PORT", value: "override" },
      ],
      {},
      {
        serviceEnv: { DB_SERVICE_HOST: "10.96.0.5", DB_SERVICE_PORT: "5432" },
      },
    );
    expect(env).toEqual({ URL: "http://10.96.0.5:5432", DB_SERVICE_PORT: "override", DB_SERVICE_HOST: "10.96.0.5" });
  });
});

describe("containerConfigs: the container", () => {
  it("expands $(VAR) in command and args with the final env", () => {
    const c = newContainer("app", {
      command: ["/bin/sh", "-c", "echo $(GREETING) $$(GREETING) $(NOPE)"],
      args: ["--level=$(LOG_LEVEL)"],
      env: [{ name: "GREETING", value: "hi" }],
      envFrom: [{ configMapRef: { name: "app-config" } }],
    });
    const [cfg] = containerConfigs(newPod({ containers: [c] }), options()).app;
    expect(cfg.command).toEqual(["/bin/sh", "-c", "echo hi $(GREETING) $(NOPE)"]);
    expect(cfg.args).toEqual(["--level=debug"]);
  });

  it("carries image, pull policy, limits, ports, labels, annotations and log path", () => {
    const c = newContainer("app", {
      image: "nginx",
      imagePullPolicy: undefined,
      workingDir: "/srv",
      resources: { limits: { cpu: "1500m", memory: "1Gi" } },
      ports: [
        { name: "http", containerPort: 80, hostPort: 8080, protocol: "TCP" },
        { containerPort: 53, protocol: "UDP" },
      ],
    });
    const pod = newPod({ containers: [c] });
    const [cfg] = containerConfigs(pod, options({ attemptOf: () => 3 })).app;
    expect(cfg).toMatchObject({
      podUID: "uid-web",
      podName: "web-7d9f",
      podNamespace: "default",
      name: "app",
      image: "nginx",
      imagePullPolicy: "Always",
      workingDir: "/srv",
      cpuMilli: 1500,
      memoryBytes: 1024 ** 3,
      ports: [
        { containerPort: 80, hostPort: 8080, protocol: "TCP" },
        { containerPort: 53, protocol: "UDP" },
      ],
      podAnnotations: { "example.com/owner": "team-a" },
      logPath: "/var/log/kubeflare/uid-web/app/3.log",
    });
    expect(cfg.labels).toEqual({
      [LABEL_POD_UID]: "uid-web",
      [LABEL_POD_NAME]: "web-7d9f",
      [LABEL_POD_NAMESPACE]: "default",
      [LABEL_CONTAINER_NAME]: "app",
      [LABEL_ATTEMPT]: "3",
      [LABEL_SPEC_HASH]: containerSpecHash(c),
      [LABEL_NODE]: "node-1",
    });
  });

  it("leaves limits unset when the container has none", () => {
    const [cfg] = containerConfigs(newPod(), options()).app;
    expect(cfg.cpuMilli).toBeUndefined();
    expect(cfg.memoryBytes).toBeUndefined();
    expect(cfg.command).toEqual([]);
    expect(cfg.args).toEqual([]);
  });

  it("splits init and app containers and leaves out the ones with errors", () => {
    const pod = newPod({
      initContainers: [newContainer("init")],
      containers: [
        newContainer("ok"),
        newContainer("bad", { env: [{ name: "X", valueFrom: { secretKeyRef: { name: "nope", key: "k" } } }] }),
      ],
    });
    const r = containerConfigs(pod, options());
    expect(r.init.map((c) => c.name)).toEqual(["init"]);
    expect(r.app.map((c) => c.name)).toEqual(["ok"]);
    expect(r.errors).toEqual([{ container: "bad", reason: "CreateContainerConfigError", message: 'secret "nope" not found' }]);
  });
});

describe("containerConfigs: volumes", () => {
  const dir = (v: string) => `/var/lib/kubeflare/pods/uid-web/volumes/${v}`;

  it("turns volumes into host directories, files and mounts", () => {
    const pod = newPod({
      volumes: [
        { name: "scratch", emptyDir: {} },
        { name: "logs", hostPath: { path: "/var/log", type: "Directory" } },
        {
          name: "cfg",
          configMap: { name: "app-config", defaultMode: 0o440, items: [{ key: "app.yaml", path: "conf/app.yaml", mode: 0o400 }] },
        },
        { name: "all-cfg", configMap: { name: "app-config" } },
        { name: "creds", secret: { secretName: "db" } },
        { name: "info", downwardAPI: { items: [{ path: "labels", fieldRef: { fieldPath: "metadata.labels" } }] } },
      ],
      containers: [
        newContainer("app", {
          volumeMounts: [
            { name: "scratch", mountPath: "/tmp" },
            { name: "logs", mountPath: "/host/log", readOnly: true },
            { name: "cfg", mountPath: "/etc/app" },
            { name: "creds", mountPath: "/etc/creds/password", subPath: "password" },
            { name: "info", mountPath: "/etc/podinfo" },
          ],
        }),
      ],
    });
    const r = containerConfigs(pod, options());
    expect(r.errors).toEqual([]);
    const byName = Object.fromEntries(r.volumes.map((v) => [v.name, v]));
    expect(byName.scratch).toEqual({ name: "scratch", hostPath: dir("scratch") });
    expect(byName.logs).toEqual({ name: "logs", hostPath: "/var/log" });
    expect(byName.cfg).toEqual({
      name: "cfg",
      hostPath: dir("cfg"),
      files: { "conf/app.yaml": "a: 1\n" },
      defaultMode: 0o440,
      modes: { "conf/app.yaml": 0o400 },
      readOnly: true,
    });
    expect(byName["all-cfg"].files).toEqual({ LOG_LEVEL: "debug", MODE: "fast", "app.yaml": "a: 1\n", "logo.bin": new Uint8Array([0, 1]) });
    expect(byName["all-cfg"].defaultMode).toBe(0o644);
    expect(byName.creds.files).toEqual({ password: new Uint8Array(Buffer.from("s3cret")), user: new Uint8Array(Buffer.from("admin")) });
    expect(byName.info.files).toEqual({ labels: 'app="web"\ntier="front"' });
    expect(r.app[0].mounts).toEqual([
      { hostPath: dir("scratch"), containerPath: "/tmp", readOnly: false },
      { hostPath: "/var/log", containerPath: "/host/log", readOnly: true },
      { hostPath: dir("cfg"), containerPath: "/etc/app", readOnly: true },
      { hostPath: `${dir("creds")}/password`, containerPath: "/etc/creds/password", readOnly: true },
      { hostPath: dir("info"), containerPath: "/etc/podinfo", readOnly: true },
    ]);
  });

  it("merges projected sources and notes service account tokens for the loop", () => {
    const pod = newPod({
      volumes: [
        {
          name: "kube-api-access",
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { path: "token", expirationSeconds: 3607 } },
              { configMap: { name: "app-config", items: [{ key: "MODE", path: "mode" }] } },
              { downwardAPI: { items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }] } },
            ],
          },
        },
      ],
    });
    const [vol] = containerConfigs(pod, options()).volumes;
    expect(vol).toEqual({
      name: "kube-api-access",
      hostPath: dir("kube-api-access"),
      files: { mode: "fast", namespace: "default" },
      defaultMode: 420,
      serviceAccountTokens: [{ path: "token", expirationSeconds: 3607 }],
      readOnly: true,
    });
  });

  const errorTable: [desc: string, volume: Obj, message: string | undefined][] = [
    [
      "missing config map",
      { name: "v", configMap: { name: "nope" } },
      'MountVolume.SetUp failed for volume "v" : configmap "nope" not found',
    ],
    ["missing secret", { name: "v", secret: { secretName: "nope" } }, 'MountVolume.SetUp failed for volume "v" : secret "nope" not found'],
    [
      "missing key in items",
      { name: "v", configMap: { name: "app-config", items: [{ key: "nope", path: "x" }] } },
      'MountVolume.SetUp failed for volume "v" : configmap references non-existent config key: nope',
    ],
    ["optional missing config map: empty", { name: "v", configMap: { name: "nope", optional: true } }, undefined],
    [
      "unsupported volume type",
      { name: "v", persistentVolumeClaim: { claimName: "data" } },
      'MountVolume.SetUp failed for volume "v" : volume type not supported by this node',
    ],
  ];
  it.each(errorTable)("%s", (_desc, volume, message) => {
    const pod = newPod({
      volumes: [volume],
      containers: [newContainer("mounts", { volumeMounts: [{ name: "v", mountPath: "/v" }] }), newContainer("other")],
    });
    const r = containerConfigs(pod, options());
    if (message === undefined) {
      expect(r.errors).toEqual([]);
      expect(r.volumes[0].files).toEqual({});
    } else {
      expect(r.errors).toEqual([{ container: "mounts", reason: "CreateContainerConfigError", message }]);
      expect(r.app.map((c) => c.name)).toEqual(["other"]);
    }
  });

  it("expands subPathExpr with the container's env and rejects escaping subpaths", () => {
    const pod = newPod({
      volumes: [{ name: "data", emptyDir: {} }],
      containers: [
        newContainer("app", {
          env: [{ name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
          volumeMounts: [{ name: "data", mountPath: "/data", subPathExpr: "$(POD)" }],
        }),
        newContainer("evil", { volumeMounts: [{ name: "data", mountPath: "/data", subPath: "../../etc" }] }),
      ],
    });
    const r = containerConfigs(pod, options());
    expect(r.app[0].mounts[0].hostPath).toBe(`${dir("data")}/web-7d9f`);
    expect(r.errors.map((e) => e.container)).toEqual(["evil"]);
  });
});
