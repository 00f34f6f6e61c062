// The container runtime interface of the node agent, CRI-like and deliberately small:
// the agent's pure sync step decides, a runtime only does. Implementations:
// docker.ts (Docker Engine API over a unix socket; also podman's compatible socket),
// process.ts (plain host processes, like Nomad's raw_exec; off unless enabled),
// fake.ts (containers steered by pod annotations, for tests and hollow nodes).
//
// Every container a runtime creates carries the labels below, so an agent that restarts
// finds (adopts) its containers instead of starting duplicates.

import type { Readable, Writable } from "node:stream";

export const LABEL_POD_UID = "io.kubeflare.pod.uid";
export const LABEL_POD_NAME = "io.kubeflare.pod.name";
export const LABEL_POD_NAMESPACE = "io.kubeflare.pod.namespace";
export const LABEL_CONTAINER_NAME = "io.kubeflare.container.name";
/** How many times this container was restarted before this instance (kube's restartCount). */
export const LABEL_ATTEMPT = "io.kubeflare.container.attempt";
/** Hash of the container spec the instance was created from (a changed spec means replace). */
export const LABEL_SPEC_HASH = "io.kubeflare.container.hash";
export const LABEL_NODE = "io.kubeflare.node";

export interface Mount {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
}

export interface PortMapping {
  containerPort: number;
  hostPort?: number;
  hostIP?: string;
  protocol: "TCP" | "UDP" | "SCTP";
}

/** Everything a runtime needs to start one container, already resolved by the agent. */
export interface ContainerConfig {
  podUID: string;
  podName: string;
  podNamespace: string;
  name: string;
  image: string;
  imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  command: string[]; // entrypoint override (empty: image default)
  args: string[]; // args override (empty: image default)
  env: Record<string, string>;
  workingDir?: string;
  mounts: Mount[];
  ports: PortMapping[];
  /** Resource limits: milli-CPU and bytes (undefined: unlimited). */
  cpuMilli?: number;
  memoryBytes?: number;
  /** Labels to put on the container (the LABEL_* keys above, set by the agent). */
  labels: Record<string, string>;
  /** Annotations of the pod (the fake runtime is steered by them). */
  podAnnotations: Record<string, string>;
  /** Host path of the file that receives the container's stdout/stderr (the agent rotates it). */
  logPath: string;
  /** The container spec's stdin: keep the container's stdin open for `kubectl attach`. */
  stdin?: boolean;
  /** The container spec's stdinOnce: close its stdin when the first attached client detaches. */
  stdinOnce?: boolean;
  /** The container spec's tty: run it on a terminal. */
  tty?: boolean;
}

export type ContainerState = "created" | "running" | "exited" | "unknown";

export interface ContainerStatus {
  id: string; // runtime-specific id, reported as containerID "<runtime>://<id>"
  name: string; // container name within the pod
  labels: Record<string, string>;
  state: ContainerState;
  exitCode?: number;
  /** Why it stopped: "Completed", "Error", "OOMKilled", ... */
  reason?: string;
  message?: string;
  startedAt?: Date;
  finishedAt?: Date;
  image: string;
  imageID?: string;
}

export interface PodSandbox {
  /** The pod's IP (the host's for process/fake runtimes, the container network's for docker). */
  ip: string;
}

export class ImagePullError extends Error {
  readonly reason: "ErrImagePull" | "ErrImageNeverPull" | "InvalidImageName";
  constructor(reason: "ErrImagePull" | "ErrImageNeverPull" | "InvalidImageName", message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * What an image is pulled for (CRI's PullImage gets the pod sandbox config too). Optional:
 * the fake runtime is steered by the pod's annotations (fake.kubeflare.dev/image-pull-error).
 */
export interface ImagePullContext {
  podAnnotations: Record<string, string>;
  containerName?: string;
}

/** exec reports this exit code when the command did not finish within timeoutMs (like timeout(1)). */
export const EXEC_TIMEOUT_EXIT_CODE = 124;

/** What an interactive exec or attach asks for. */
export interface StreamOptions {
  /** Connect the client's input to the process's stdin. */
  stdin: boolean;
  /** Run the exec'd command on a terminal (exec; attach follows the container's own tty). */
  tty: boolean;
}

/**
 * A running exec or attach session, as Node streams (which give backpressure both ways: a
 * reader that stops reading stdout stops the process at its pipe buffer; stdin.write() returns
 * false while the process does not drain it).
 */
export interface ExecSession {
  /** The process's stdin (undefined: not requested, or the container has no open stdin). end() half-closes it. */
  stdin?: Writable;
  /** Output (with a tty: everything the terminal shows). Ends when the process's output ends. */
  stdout: Readable;
  /** Error output; undefined with a tty (merged into stdout), or where the runtime cannot separate it. */
  stderr?: Readable;
  /** Sets the terminal size (a no-op without a tty); best effort, never throws. */
  resize(width: number, height: number): void;
  /**
   * Resolves when the session is over: exec with the command's exit code; attach when the
   * container exited (its exit code, or null if unknown) or the attachment ended. Rejects
   * if the runtime lost track of the session.
   */
  exited: Promise<number | null>;
  /** Abandons the session (the client went away): kills an exec'd process where the runtime can, detaches an attach. */
  close(): void;
}

export interface Runtime {
  /** "docker", "process", "fake" (reported in nodeInfo.containerRuntimeVersion as name://version). */
  readonly name: string;
  version(): Promise<string>;
  /** Makes the image available according to the pull policy; ImagePullError if it cannot. */
  ensureImage(image: string, policy: ContainerConfig["imagePullPolicy"], context?: ImagePullContext): Promise<void>;
  /**
   * Prepares the pod's shared context (network) once per pod; idempotent. ports: the pod's
   * container ports (optional); docker publishes their hostPorts on the sandbox, because
   * containers that join the sandbox's network cannot publish ports themselves.
   */
  ensureSandbox(podUID: string, podName: string, podNamespace: string, ports?: PortMapping[]): Promise<PodSandbox>;
  removeSandbox(podUID: string): Promise<void>;
  /** Creates and starts a container; returns its id. */
  start(config: ContainerConfig): Promise<string>;
  /** Sends SIGTERM, then SIGKILL after graceSeconds; resolves when it has stopped. */
  stop(id: string, graceSeconds: number): Promise<void>;
  remove(id: string): Promise<void>;
  /** Every container this runtime manages for this node (found by LABEL_NODE). */
  list(): Promise<ContainerStatus[]>;
  /** Runs a command inside a running container (exec probes); EXEC_TIMEOUT_EXIT_CODE on timeout. */
  exec(id: string, command: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }>;
  /**
   * Starts an interactive command inside a running container (`kubectl exec`); resolves once
   * it runs. Throws if the container does not run or the command cannot be started.
   */
  execStream?(id: string, command: string[], opts: StreamOptions): Promise<ExecSession>;
  /** Attaches to a running container's own stdin/stdout/stderr (`kubectl attach`). */
  attach?(id: string, opts: StreamOptions): Promise<ExecSession>;
}
