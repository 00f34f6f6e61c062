// Resolves a pod's containers into runtime ContainerConfigs, after kubelet's
// makeEnvironmentVariables / makeMounts / generateContainerConfig: env (value with $(VAR)
// expansion, valueFrom fieldRef / resourceFieldRef / configMapKeyRef / secretKeyRef),
// envFrom with prefix, $(VAR) expansion of command and args, volumes (emptyDir, hostPath,
// configMap, secret, downwardAPI, projected) turned into host directories and the files to
// write there, mounts, limits, ports and the agent's labels. Pure: config maps, secrets and
// host paths come from the caller.
//
// A container whose config cannot be made (a missing config map, secret or key that is not
// optional, an unsupported fieldPath, a volume that cannot be set up) is left out of
// init/app and reported in errors with kube's reason and message; the loop shows it as the
// container's waiting reason (CreateContainerConfigError) and retries later.
// Service environment variables are the loop's: pass them as serviceEnv to have them in the
// environment (lowest precedence) and in $(VAR) expansion, like kubelet.

import { defaultImagePullPolicy } from "../workers/shared/defaults.ts";
import { parseQuantity } from "../workers/shared/validation.ts";
import {
  type ContainerConfig,
  LABEL_ATTEMPT,
  LABEL_CONTAINER_NAME,
  LABEL_NODE,
  LABEL_POD_NAME,
  LABEL_POD_NAMESPACE,
  LABEL_POD_UID,
  LABEL_SPEC_HASH,
  type Mount,
  type PortMapping,
} from "./runtime/types.ts";
import { containerSpecHash, objects } from "./sync.ts";

type Obj = Record<string, any>;

export interface PodSpecOptions {
  nodeName: string;
  podIP: string;
  hostIP: string;
  configMaps: (namespace: string, name: string) => Obj | undefined;
  secrets: (namespace: string, name: string) => Obj | undefined;
  /** Host directory for an emptyDir/configMap/secret/downwardAPI/projected volume's content. */
  volumeDir: (podUID: string, volumeName: string) => string;
  logPath: (podUID: string, container: string, attempt: number) => string;
  attemptOf: (container: string) => number;
  /** Service environment variables (kubelet's getServiceEnvVarMap), lowest precedence. */
  serviceEnv?: Record<string, string>;
  /** Node allocatable, used for resourceFieldRef limits a container does not set (like kubelet). */
  allocatable?: Record<string, string>;
}

export interface VolumeSetup {
  name: string;
  /** The host directory (emptyDir, content volumes) or path (hostPath) to mount. */
  hostPath: string;
  /** Files to write into hostPath (content volumes): relative path → content. */
  files?: Record<string, string | Uint8Array>;
  /** Mode of the files (defaultMode, 0644 when unset), and per-file modes from items. */
  defaultMode?: number;
  modes?: Record<string, number>;
  /** Projected serviceAccountToken sources: the loop requests the token and writes it to path. */
  serviceAccountTokens?: { path: string; audience?: string; expirationSeconds: number }[];
  /** Content volumes are mounted read-only. */
  readOnly?: boolean;
}

export interface ConfigError {
  container: string;
  reason: "CreateContainerConfigError";
  message: string;
}

export interface PodConfigs {
  init: ContainerConfig[];
  app: ContainerConfig[];
  volumes: VolumeSetup[];
  errors: ConfigError[];
}

class ConfigErr extends Error {}

// ---------------------------------------------------------------------------------------
// $(VAR) expansion (k8s.io/kubernetes/third_party/forked/golang/expansion).

/**
 * Expands $(VAR) references with the first mapping that defines VAR; undefined references
 * stay as they are, "$$" is an escaped "$".
 */
export function expand(input: string, ...maps: (Record<string, string> | undefined)[]): string {
  const lookup = (name: string): string => {
    for (const m of maps) if (m && Object.hasOwn(m, name)) return m[name];
    return `$(${name})`;
  };
  let out = "";
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== "$" || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let read: string;
    let isVar = false;
    let advance = 1;
    if (rest[0] === "$") read = "$";
    else if (rest[0] === "(") {
      const close = rest.indexOf(")", 1);
      if (close >= 0) {
        read = rest.slice(1, close);
        isVar = true;
        advance = close + 1;
      } else read = "$(";
    } else read = `$${rest[0]}`;
    out += isVar ? lookup(read) : read;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

// ---------------------------------------------------------------------------------------
// Downward API.

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === "object" && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) if (typeof x === "string") out[k] = x;
  return out;
}

/** kube's formatMap: sorted `key="value"` lines. */
function formatMap(m: Record<string, string>): string {
  return Object.keys(m)
    .sort()
    .map((k) => `${k}=${JSON.stringify(m[k])}`)
    .join("\n");
}

/** The value of a downward API fieldRef (podFieldSelectorRuntimeValue + ExtractFieldPathAsString). */
export function podFieldValue(pod: Obj, fieldPath: string, opts: Pick<PodSpecOptions, "nodeName" | "podIP" | "hostIP">): string {
  const meta = pod?.metadata ?? {};
  const spec = pod?.spec ?? {};
  const podIP = spec.hostNetwork === true && opts.hostIP ? opts.hostIP : opts.podIP;
  switch (fieldPath) {
    case "spec.nodeName":
      return str(spec.nodeName) || opts.nodeName;
    case "spec.serviceAccountName":
      return str(spec.serviceAccountName);
    case "status.hostIP":
    case "status.hostIPs":
      return opts.hostIP;
    case "status.podIP":
    case "status.podIPs":
      return podIP;
    case "metadata.name":
      return str(meta.name);
    case "metadata.namespace":
      return str(meta.namespace);
    case "metadata.uid":
      return str(meta.uid);
    case "metadata.labels":
      return formatMap(strMap(meta.labels));
    case "metadata.annotations":
      return formatMap(strMap(meta.annotations));
  }
  const sub = /^metadata\.(labels|annotations)\[(?:'([^']*)'|"([^"]*)")\]$/.exec(fieldPath);
  if (sub) return strMap(meta[sub[1]])[sub[2] ?? sub[3]] ?? "";
  throw new ConfigErr(`unsupported fieldPath: ${fieldPath}`);
}

function quantity(v: unknown): number {
  if (typeof v === "number") return v;
  if (typeof v === "string") return parseQuantity(v);
  return Number.NaN;
}

/** The value of a resourceFieldRef (kubelet's ExtractContainerResourceValue). */
export function resourceFieldValue(ref: Obj, container: Obj, allocatable?: Record<string, string>): string {
  const resource = str(ref.resource);
  const m = /^(limits|requests)\.(.+)$/.exec(resource);
  if (!m) throw new ConfigErr(`unsupported container resource: ${resource}`);
  const [, kind, name] = m;
  let q = quantity(container?.resources?.[kind]?.[name]);
  if (!Number.isFinite(q)) q = kind === "limits" ? quantity(allocatable?.[name]) : 0;
  if (!Number.isFinite(q)) q = 0;
  let divisor = quantity(ref.divisor ?? "1");
  if (!Number.isFinite(divisor) || divisor <= 0) divisor = 1;
  if (name === "cpu") {
    const milli = Math.ceil(q * 1000 - 1e-9);
    const dm = Math.ceil(divisor * 1000 - 1e-9) || 1;
    return String(Math.ceil(milli / dm));
  }
  return String(Math.ceil(q / divisor - 1e-9));
}

// ---------------------------------------------------------------------------------------
// Config maps and secrets.

function decodeBase64(v: string): Uint8Array {
  return new Uint8Array(Buffer.from(v, "base64"));
}

function secretString(v: unknown): string {
  return typeof v === "string" ? Buffer.from(v, "base64").toString("utf8") : "";
}

/** A config map's keys as file contents (data as text, binaryData as bytes). */
function configMapContents(cm: Obj): Record<string, string | Uint8Array> {
  const out: Record<string, string | Uint8Array> = {};
  for (const [k, v] of Object.entries(strMap(cm.data))) out[k] = v;
  for (const [k, v] of Object.entries(strMap(cm.binaryData))) out[k] = decodeBase64(v);
  return out;
}

/** A secret's keys as file contents (data decoded from base64; stringData as is). */
function secretContents(s: Obj): Record<string, string | Uint8Array> {
  const out: Record<string, string | Uint8Array> = {};
  for (const [k, v] of Object.entries(strMap(s.data))) out[k] = decodeBase64(v);
  for (const [k, v] of Object.entries(strMap(s.stringData))) out[k] = v;
  return out;
}

/** Env names kubelet accepts from envFrom (RelaxedEnvironmentVariableValidation: printable, no "="). */
function validEnvName(k: string): boolean {
  return k !== "" && /^[\x20-\x7e]+$/.test(k) && !k.includes("=");
}

// ---------------------------------------------------------------------------------------
// containerConfigs.

interface Resolved {
  vols: Map<string, VolumeSetup>;
  volErrors: Map<string, string>;
}

const CONTENT_SOURCES = ["configMap", "secret", "downwardAPI", "projected"];

function setupVolumes(pod: Obj, opts: PodSpecOptions, all: Obj[]): Resolved {
  const meta = pod?.metadata ?? {};
  const uid = str(meta.uid);
  const ns = str(meta.namespace) || "default";
  const vols = new Map<string, VolumeSetup>();
  const volErrors = new Map<string, string>();

  // Items of a configMap/secret source: the selected keys under their paths.
  const project = (
    contents: Record<string, string | Uint8Array>,
    items: Obj[],
    optional: boolean,
    what: "configmap" | "secret",
    files: Record<string, string | Uint8Array>,
    modes: Record<string, number>,
  ): void => {
    if (items.length === 0) {
      Object.assign(files, contents);
      return;
    }
    for (const it of items) {
      const key = str(it.key);
      const path = str(it.path) || key;
      if (!Object.hasOwn(contents, key)) {
        if (optional) continue;
        throw new ConfigErr(
          what === "configmap"
            ? `configmap references non-existent config key: ${key}`
            : `secret references non-existent secret key: ${key}`,
        );
      }
      files[path] = contents[key];
      if (typeof it.mode === "number") modes[path] = it.mode;
    }
  };
  const configMapSource = (src: Obj, files: Record<string, string | Uint8Array>, modes: Record<string, number>): void => {
    const name = str(src.name);
    const cm = opts.configMaps(ns, name);
    if (!cm) {
      if (src.optional === true) return;
      throw new ConfigErr(`configmap "${name}" not found`);
    }
    project(configMapContents(cm), objects(src.items), src.optional === true, "configmap", files, modes);
  };
  const secretSource = (src: Obj, name: string, files: Record<string, string | Uint8Array>, modes: Record<string, number>): void => {
    const s = opts.secrets(ns, name);
    if (!s) {
      if (src.optional === true) return;
      throw new ConfigErr(`secret "${name}" not found`);
    }
    project(secretContents(s), objects(src.items), src.optional === true, "secret", files, modes);
  };
  const downwardSource = (src: Obj, files: Record<string, string | Uint8Array>, modes: Record<string, number>): void => {
    for (const it of objects(src.items)) {
      const path = str(it.path);
      if (!path) continue;
      if (it.fieldRef) files[path] = podFieldValue(pod, str(it.fieldRef.fieldPath), opts);
      else if (it.resourceFieldRef) {
        const cname = str(it.resourceFieldRef.containerName);
        const target = all.find((c) => c.name === cname);
        if (!target) throw new ConfigErr(`container "${cname}" not found for resourceFieldRef`);
        files[path] = resourceFieldValue(it.resourceFieldRef, target, opts.allocatable);
      } else continue;
      if (typeof it.mode === "number") modes[path] = it.mode;
    }
  };

  for (const v of objects(pod?.spec?.volumes)) {
    const name = str(v.name);
    if (!name) continue;
    try {
      if (v.hostPath && typeof v.hostPath === "object") {
        vols.set(name, { name, hostPath: str(v.hostPath.path) });
        continue;
      }
      const source = CONTENT_SOURCES.find((k) => v[k] && typeof v[k] === "object");
      if (!source) {
        if (v.emptyDir && typeof v.emptyDir === "object") vols.set(name, { name, hostPath: opts.volumeDir(uid, name) });
        else throw new ConfigErr("volume type not supported by this node");
        continue;
      }
      const files: Record<string, string | Uint8Array> = {};
      const modes: Record<string, number> = {};
      const src: Obj = v[source];
      const tokens: NonNullable<VolumeSetup["serviceAccountTokens"]> = [];
      if (source === "configMap") configMapSource(src, files, modes);
      else if (source === "secret") secretSource(src, str(src.secretName), files, modes);
      else if (source === "downwardAPI") downwardSource(src, files, modes);
      else {
        for (const s of objects(src.sources)) {
          if (s.configMap) configMapSource(s.configMap, files, modes);
          else if (s.secret) secretSource(s.secret, str(s.secret.name), files, modes);
          else if (s.downwardAPI) downwardSource(s.downwardAPI, files, modes);
          else if (s.serviceAccountToken) {
            const t = s.serviceAccountToken;
            tokens.push({
              path: str(t.path),
              ...(str(t.audience) ? { audience: str(t.audience) } : {}),
              expirationSeconds: typeof t.expirationSeconds === "number" ? t.expirationSeconds : 3600,
            });
          }
        }
      }
      const vs: VolumeSetup = {
        name,
        hostPath: opts.volumeDir(uid, name),
        files,
        defaultMode: typeof src.defaultMode === "number" ? src.defaultMode : 0o644,
        readOnly: true,
      };
      if (Object.keys(modes).length > 0) vs.modes = modes;
      if (tokens.length > 0) vs.serviceAccountTokens = tokens;
      vols.set(name, vs);
    } catch (e) {
      if (!(e instanceof ConfigErr)) throw e;
      volErrors.set(name, `MountVolume.SetUp failed for volume "${name}" : ${e.message}`);
    }
  }
  return { vols, volErrors };
}

/** The environment of one container, in kubelet's order: envFrom, env, then service env. */
function containerEnv(pod: Obj, c: Obj, all: Obj[], opts: PodSpecOptions): Record<string, string> {
  const ns = str(pod?.metadata?.namespace) || "default";
  const service = opts.serviceEnv ?? {};
  const env: Record<string, string> = {};
  for (const ef of objects(c.envFrom)) {
    const prefix = str(ef.prefix);
    if (ef.configMapRef) {
      const name = str(ef.configMapRef.name);
      const cm = opts.configMaps(ns, name);
      if (!cm) {
        if (ef.configMapRef.optional === true) continue;
        throw new ConfigErr(`configmap "${name}" not found`);
      }
      for (const [k, v] of Object.entries(strMap(cm.data))) if (validEnvName(prefix + k)) env[prefix + k] = v;
    } else if (ef.secretRef) {
      const name = str(ef.secretRef.name);
      const s = opts.secrets(ns, name);
      if (!s) {
        if (ef.secretRef.optional === true) continue;
        throw new ConfigErr(`secret "${name}" not found`);
      }
      for (const [k, v] of Object.entries(strMap(s.data))) if (validEnvName(prefix + k)) env[prefix + k] = secretString(v);
      for (const [k, v] of Object.entries(strMap(s.stringData))) if (validEnvName(prefix + k)) env[prefix + k] = v;
    }
  }
  for (const e of objects(c.env)) {
    const name = str(e.name);
    if (!name) continue;
    let value = "";
    if (typeof e.value === "string" && e.value !== "") value = expand(e.value, env, service);
    else if (e.valueFrom && typeof e.valueFrom === "object") {
      const vf: Obj = e.valueFrom;
      if (vf.fieldRef) value = podFieldValue(pod, str(vf.fieldRef.fieldPath), opts);
      else if (vf.resourceFieldRef) {
        const cname = str(vf.resourceFieldRef.containerName);
        const target = cname ? all.find((x) => x.name === cname) : c;
        if (!target) throw new ConfigErr(`container "${cname}" not found for resourceFieldRef`);
        value = resourceFieldValue(vf.resourceFieldRef, target, opts.allocatable);
      } else if (vf.configMapKeyRef) {
        const ref: Obj = vf.configMapKeyRef;
        const cmName = str(ref.name);
        const key = str(ref.key);
        const optional = ref.optional === true;
        const cm = opts.configMaps(ns, cmName);
        if (!cm) {
          if (optional) continue;
          throw new ConfigErr(`configmap "${cmName}" not found`);
        }
        const data = strMap(cm.data);
        if (!Object.hasOwn(data, key)) {
          if (optional) continue;
          throw new ConfigErr(`couldn't find key ${key} in ConfigMap ${ns}/${cmName}`);
        }
        value = data[key];
      } else if (vf.secretKeyRef) {
        const ref: Obj = vf.secretKeyRef;
        const sName = str(ref.name);
        const key = str(ref.key);
        const optional = ref.optional === true;
        const s = opts.secrets(ns, sName);
        if (!s) {
          if (optional) continue;
          throw new ConfigErr(`secret "${sName}" not found`);
        }
        const data = strMap(s.data);
        const stringData = strMap(s.stringData);
        if (Object.hasOwn(data, key)) value = secretString(data[key]);
        else if (Object.hasOwn(stringData, key)) value = stringData[key];
        else {
          if (optional) continue;
          throw new ConfigErr(`couldn't find key ${key} in Secret ${ns}/${sName}`);
        }
      }
    }
    env[name] = value;
  }
  for (const [k, v] of Object.entries(service)) if (!Object.hasOwn(env, k)) env[k] = v;
  return env;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map((x) => (typeof x === "string" ? x : String(x))) : [];
}

function joinPath(base: string, sub: string): string {
  return `${base.replace(/\/+$/, "")}/${sub.replace(/^\/+/, "")}`;
}

function pullPolicy(c: Obj): ContainerConfig["imagePullPolicy"] {
  const p = c.imagePullPolicy;
  return p === "Always" || p === "IfNotPresent" || p === "Never" ? p : defaultImagePullPolicy(c.image);
}

export function containerConfigs(pod: Obj, opts: PodSpecOptions): PodConfigs {
  const meta = pod?.metadata ?? {};
  const spec = pod?.spec ?? {};
  const uid = str(meta.uid);
  const inits = objects(spec.initContainers).filter((c) => typeof c.name === "string");
  const apps = objects(spec.containers).filter((c) => typeof c.name === "string");
  const all = [...inits, ...apps];
  const { vols, volErrors } = setupVolumes(pod, opts, all);
  const errors: ConfigError[] = [];
  const podAnnotations = strMap(meta.annotations);

  const build = (c: Obj): ContainerConfig | undefined => {
    const name: string = c.name;
    try {
      const env = containerEnv(pod, c, all, opts);
      const mounts: Mount[] = [];
      for (const m of objects(c.volumeMounts)) {
        const vname = str(m.name);
        const volErr = volErrors.get(vname);
        if (volErr) throw new ConfigErr(volErr);
        const vol = vols.get(vname);
        if (!vol) throw new ConfigErr(`cannot find volume "${vname}" to mount into container "${name}"`);
        let sub = str(m.subPath);
        if (!sub && str(m.subPathExpr)) sub = expand(str(m.subPathExpr), env);
        if (sub && (sub.startsWith("/") || sub.split("/").includes(".."))) {
          throw new ConfigErr(`subPath "${sub}" must be a relative path without '..'`);
        }
        mounts.push({
          hostPath: sub ? joinPath(vol.hostPath, sub) : vol.hostPath,
          containerPath: str(m.mountPath),
          readOnly: m.readOnly === true || vol.readOnly === true,
        });
      }
      const ports: PortMapping[] = [];
      for (const p of objects(c.ports)) {
        if (typeof p.containerPort !== "number") continue;
        const pm: PortMapping = {
          containerPort: p.containerPort,
          protocol: p.protocol === "UDP" || p.protocol === "SCTP" ? p.protocol : "TCP",
        };
        if (typeof p.hostPort === "number" && p.hostPort > 0) pm.hostPort = p.hostPort;
        if (typeof p.hostIP === "string" && p.hostIP) pm.hostIP = p.hostIP;
        ports.push(pm);
      }
      const attempt = opts.attemptOf(name);
      const config: ContainerConfig = {
        podUID: uid,
        podName: str(meta.name),
        podNamespace: str(meta.namespace) || "default",
        name,
        image: str(c.image),
        imagePullPolicy: pullPolicy(c),
        command: strings(c.command).map((s) => expand(s, env)),
        args: strings(c.args).map((s) => expand(s, env)),
        env,
        mounts,
        ports,
        labels: {
          [LABEL_POD_UID]: uid,
          [LABEL_POD_NAME]: str(meta.name),
          [LABEL_POD_NAMESPACE]: str(meta.namespace) || "default",
          [LABEL_CONTAINER_NAME]: name,
          [LABEL_ATTEMPT]: String(attempt),
          [LABEL_SPEC_HASH]: containerSpecHash(c),
          [LABEL_NODE]: opts.nodeName,
        },
        podAnnotations,
        logPath: opts.logPath(uid, name, attempt),
      };
      if (str(c.workingDir)) config.workingDir = str(c.workingDir);
      if (c.stdin === true) config.stdin = true;
      if (c.stdinOnce === true) config.stdinOnce = true;
      if (c.tty === true) config.tty = true;
      const limits: Obj = c.resources?.limits ?? {};
      const cpu = quantity(limits.cpu);
      if (Number.isFinite(cpu) && cpu > 0) config.cpuMilli = Math.ceil(cpu * 1000 - 1e-9);
      const mem = quantity(limits.memory);
      if (Number.isFinite(mem) && mem > 0) config.memoryBytes = Math.ceil(mem - 1e-9);
      return config;
    } catch (e) {
      if (!(e instanceof ConfigErr)) throw e;
      errors.push({ container: name, reason: "CreateContainerConfigError", message: e.message });
      return undefined;
    }
  };

  const init = inits.map(build).filter((x): x is ContainerConfig => x !== undefined);
  const app = apps.map(build).filter((x): x is ContainerConfig => x !== undefined);
  return { init, app, volumes: [...vols.values()], errors };
}
