// The docker runtime against a real engine (Docker, or podman's compatible socket via
// DOCKER_HOST=unix://...). Skips, saying why, when no engine answers or the local test image
// cannot be built (test/fixtures/busybox-image.sh needs busybox-static); no registry is used.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DockerRuntime } from "../../node-agent/runtime/docker.ts";
import {
  type ContainerConfig,
  type ContainerStatus,
  ImagePullError,
  LABEL_ATTEMPT,
  LABEL_CONTAINER_NAME,
  LABEL_NODE,
  LABEL_POD_NAME,
  LABEL_POD_NAMESPACE,
  LABEL_POD_UID,
} from "../../node-agent/runtime/types.ts";
import { dockerSkipReason, IMAGE, socketPath } from "./docker-fixture.ts";

const nodeName = `e2e-${process.pid}`;

const skipReason = await dockerSkipReason(nodeName);
if (skipReason) console.warn(`[runtime-docker] skipping the docker runtime tests: ${skipReason}`);

let dir: string;
const runtimes: DockerRuntime[] = [];
function runtime(): DockerRuntime {
  const rt = new DockerRuntime({ socketPath, nodeName });
  runtimes.push(rt);
  return rt;
}

const podUIDs: string[] = [];
function pod(name = "web") {
  const uid = `${process.pid}-${podUIDs.length + 1}-${Math.random().toString(16).slice(2, 8)}`;
  podUIDs.push(uid);
  return { podUID: uid, podName: name, podNamespace: "default" };
}

function config(p: ReturnType<typeof pod>, name: string, over: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    ...p,
    name,
    image: IMAGE,
    imagePullPolicy: "Never",
    command: [],
    args: [],
    env: {},
    mounts: [],
    ports: [],
    labels: {
      [LABEL_POD_UID]: p.podUID,
      [LABEL_POD_NAME]: p.podName,
      [LABEL_POD_NAMESPACE]: p.podNamespace,
      [LABEL_CONTAINER_NAME]: name,
      [LABEL_ATTEMPT]: "0",
    },
    podAnnotations: {},
    logPath: path.join(dir, p.podUID, `${name}.log`),
    ...over,
  };
}

async function statusOf(rt: DockerRuntime, id: string): Promise<ContainerStatus | undefined> {
  return (await rt.list()).find((s) => s.id === id);
}

async function eventually<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const readLog = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");

/** Everything a readable gives, as it arrives. */
function collect(r: NodeJS.ReadableStream): { text: string } {
  const acc = { text: "" };
  r.on("data", (c: Buffer) => {
    acc.text += c.toString("utf8");
  });
  return acc;
}

describe.skipIf(skipReason !== undefined)("DockerRuntime (real engine)", () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kf-docker-"));
  });

  afterAll(async () => {
    // everything of this test node goes, sandboxes included
    const rt = runtime();
    for (const s of await rt.list()) await rt.remove(s.id);
    for (const uid of podUIDs) await rt.removeSandbox(uid);
    for (const r of runtimes) r.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("negotiates the API version and reports the engine's version", async () => {
    const rt = runtime();
    expect(await rt.version()).toMatch(/\d+\.\d+/);
    expect(await rt.apiVersion()).toMatch(/^1\.\d+$/);
  });

  it("ensureImage: IfNotPresent and Never with the local image do not pull", async () => {
    const rt = runtime();
    const spy = vi.spyOn(rt as any, "call");
    await rt.ensureImage(IMAGE, "IfNotPresent");
    await rt.ensureImage(IMAGE, "Never");
    const pulls = spy.mock.calls.filter((c) => c[1] === "/images/create");
    expect(pulls).toEqual([]);
  });

  it("ensureImage: Never with a missing image is ErrImageNeverPull", async () => {
    const err = await runtime()
      .ensureImage("kubeflare/not-here:never", "Never")
      .catch((e) => e);
    expect(err).toBeInstanceOf(ImagePullError);
    expect(err.reason).toBe("ErrImageNeverPull");
    expect(err.message).toContain("kubeflare/not-here:never");
  });

  it("ensureImage: a missing image that cannot be pulled is ErrImagePull with the engine's message", async () => {
    const rt = runtime();
    // a registry on a closed local port: fails at once, whatever the machine's network
    const err = await rt.ensureImage("127.0.0.1:1/kubeflare/missing:test", "IfNotPresent").catch((e) => e);
    expect(err).toBeInstanceOf(ImagePullError);
    expect(err.reason).toBe("ErrImagePull");
    expect(err.message).toMatch(/127\.0\.0\.1:1/);
    // Always pulls even when present; the local-only image is in no registry
    const always = await rt.ensureImage(IMAGE, "Always").catch((e) => e);
    expect(always).toBeInstanceOf(ImagePullError);
    expect(always.reason).toBe("ErrImagePull");
    const invalid = await rt.ensureImage("Not A/Valid::name", "IfNotPresent").catch((e) => e);
    expect(invalid).toMatchObject({ reason: "InvalidImageName" });
  });

  it("start with env and command, logs to logPath, exec, stop with grace, remove", async () => {
    const rt = runtime();
    const p = pod();
    const sandbox = await rt.ensureSandbox(p.podUID, p.podName, p.podNamespace);
    expect(sandbox.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(await rt.ensureSandbox(p.podUID, p.podName, p.podNamespace)).toEqual(sandbox); // idempotent

    const c = config(p, "app", {
      command: ["sh", "-c"],
      args: ['echo "hello $GREETING from $(pwd)"; echo "to stderr" >&2; exec sleep 600'],
      env: { GREETING: "world" },
      workingDir: "/tmp",
      cpuMilli: 250,
      memoryBytes: 64 * 1024 * 1024,
    });
    const id = await rt.start(c);
    const st = (await statusOf(rt, id))!;
    expect(st).toMatchObject({ id, name: "app", state: "running", image: IMAGE });
    expect(st.labels).toMatchObject({ ...c.labels, [LABEL_NODE]: nodeName });
    expect(st.startedAt).toBeInstanceOf(Date);
    expect(st.imageID).toMatch(/^sha256:/);

    const log = await eventually(
      () => readLog(c.logPath),
      (t) => t.includes("to stderr") && t.includes("hello"),
    );
    expect(log).toContain("hello world from /tmp\n");
    expect(log).not.toMatch(/^\d{4}-\d\d-\d\dT/m); // timestamps stripped

    expect(await rt.exec(id, ["echo", "hi"], 10_000)).toEqual({ exitCode: 0, output: "hi\n" });
    expect(await rt.exec(id, ["sh", "-c", "echo $GREETING; hostname; exit 4"], 10_000)).toEqual({ exitCode: 4, output: "world\nweb\n" });
    const slow = await rt.exec(id, ["sleep", "30"], 300);
    expect(slow.exitCode).toBe(124);

    // PID 1 without a TERM handler ignores SIGTERM: killed after the grace period
    const t0 = Date.now();
    await rt.stop(id, 1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const stopped = (await statusOf(rt, id))!;
    expect(stopped).toMatchObject({ state: "exited", exitCode: 137, reason: "Error" });
    expect(stopped.finishedAt!.getTime()).toBeGreaterThanOrEqual(stopped.startedAt!.getTime());

    await rt.remove(id);
    expect(await statusOf(rt, id)).toBeUndefined();
    await rt.remove(id); // idempotent
    await rt.stop(id, 1);
    await rt.removeSandbox(p.podUID);
    await rt.removeSandbox(p.podUID);
  });

  it("exit codes: Completed, Error; a TERM handler ends at once", async () => {
    const rt = runtime();
    const p = pod("jobs");
    const ok = await rt.start(config(p, "ok", { command: ["true"] }));
    const bad = await rt.start(config(p, "bad", { args: ["sh", "-c", "exit 3"] }));
    const polite = await rt.start(config(p, "polite", { command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }));
    const done = await eventually(
      () => rt.list(),
      (l) => l.filter((s) => s.state === "exited").length >= 2,
    );
    const m = new Map(done.map((s) => [s.id, s]));
    expect(m.get(ok)).toMatchObject({ state: "exited", exitCode: 0, reason: "Completed" });
    expect(m.get(bad)).toMatchObject({ state: "exited", exitCode: 3, reason: "Error" });
    const t0 = Date.now();
    await rt.stop(polite, 20);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await statusOf(rt, polite)).toMatchObject({ state: "exited", exitCode: 0 });
    await expect(rt.exec(polite, ["true"], 1000)).rejects.toThrow();
  });

  it("containers of a pod share the sandbox's network; hostPorts are published by the sandbox", async () => {
    const rt = runtime();
    const p = pod("net");
    const hostPort = 20000 + (process.pid % 20000);
    const ports = [{ containerPort: 8080, hostPort, protocol: "TCP" as const }];
    const { ip } = await rt.ensureSandbox(p.podUID, p.podName, p.podNamespace, ports);
    fs.mkdirSync(path.join(dir, "www"), { recursive: true });
    fs.writeFileSync(path.join(dir, "www", "index.html"), "hello from the pod\n");
    await rt.start(
      config(p, "server", {
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"],
        ports,
        mounts: [{ hostPath: path.join(dir, "www"), containerPath: "/www", readOnly: true }],
      }),
    );
    const client = await rt.start(config(p, "client", { command: ["sleep", "600"] }));
    const viaLocalhost = await eventually(
      () => rt.exec(client, ["wget", "-qO-", "http://127.0.0.1:8080/"], 5000),
      (r) => r.exitCode === 0,
    );
    expect(viaLocalhost.output).toBe("hello from the pod\n");
    const viaHostPort = await eventually(
      () =>
        fetch(`http://127.0.0.1:${hostPort}/`)
          .then((r) => r.text())
          .catch(() => ""),
      (t) => t !== "",
    );
    expect(viaHostPort).toBe("hello from the pod\n");
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it("re-adoption: a new instance lists the running container by label and resumes copying its logs", async () => {
    const a = runtime();
    const p = pod("adopt");
    const c = config(p, "counter", { command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done"] });
    const id = await a.start(c);
    await eventually(
      () => readLog(c.logPath),
      (t) => t.includes("\n3\n"),
    );
    const before = (await statusOf(a, id))!;
    a.close(); // the agent goes away
    await new Promise((r) => setTimeout(r, 800));

    const b = runtime();
    const after = (await statusOf(b, id))!;
    expect(after).toMatchObject({ id, name: "counter", state: "running", labels: before.labels });
    expect(after.startedAt).toEqual(before.startedAt);
    // b follows again from where the copy stopped: no number is missing
    const log = await eventually(
      () => readLog(c.logPath),
      (t) => t.split("\n").filter(Boolean).map(Number).at(-1)! >= 15,
    );
    const seen = new Set(log.split("\n").filter(Boolean).map(Number));
    const max = Math.max(...seen);
    for (let i = 1; i <= max; i++) expect(seen.has(i), `line ${i} copied`).toBe(true);
    await b.stop(id, 0);
    await b.remove(id);
    await b.removeSandbox(p.podUID);
  });
  it("execStream: stdin comes back on stdout, stderr apart, EOF on stdin, exit code", async () => {
    const rt = runtime();
    const p = pod("exec");
    await rt.ensureSandbox(p.podUID, p.podName, p.podNamespace);
    const id = await rt.start(config(p, "app", { command: ["sh", "-c"], args: ["exec sleep 600"] }));
    const s = await rt.execStream(id, ["sh", "-c", "cat; echo err >&2; exit 3"], { stdin: true, tty: false });
    const out = collect(s.stdout);
    const err = collect(s.stderr!);
    s.stdin!.write("hello\n");
    await eventually(
      () => out.text,
      (t) => t === "hello\n",
    );
    s.stdin!.end();
    expect(await s.exited).toBe(3);
    expect(out.text).toBe("hello\n");
    expect(err.text).toBe("err\n");
  });

  it("execStream: a session whose client went away has its process killed", async () => {
    const rt = runtime();
    const p = pod("execkill");
    await rt.ensureSandbox(p.podUID, p.podName, p.podNamespace);
    const id = await rt.start(config(p, "app", { command: ["sh", "-c"], args: ["exec sleep 600"] }));
    const running = async () => (await rt.exec(id, ["sh", "-c", "ps | grep -c '[s]leep 301'"], 5000)).output.trim();
    const s = await rt.execStream(id, ["sleep", "301"], { stdin: true, tty: false });
    await eventually(running, (n) => n === "1");
    s.close();
    await eventually(running, (n) => n === "0");
  });

  it("execStream with a tty: the command has a terminal, one output stream, and resize sets its size", async () => {
    const rt = runtime();
    const p = pod("exectty");
    await rt.ensureSandbox(p.podUID, p.podName, p.podNamespace);
    const id = await rt.start(config(p, "app", { command: ["sh", "-c"], args: ["exec sleep 600"] }));
    const s = await rt.execStream(
      id,
      ["sh", "-c", 'test -t 0 && echo on-a-tty; while [ "$(stty size 2>/dev/null)" != "30 100" ]; do sleep 0.1; done; echo resized'],
      { stdin: true, tty: true },
    );
    expect(s.stderr).toBeUndefined();
    const out = collect(s.stdout);
    s.resize(100, 30);
    expect(await s.exited).toBe(0);
    expect(out.text).toBe("on-a-tty\r\nresized\r\n");
  });

  it("attach: a container made with stdin and stdinOnce reads what is written; closing stdin ends it", async () => {
    const rt = runtime();
    const p = pod("attach");
    await rt.ensureSandbox(p.podUID, p.podName, p.podNamespace);
    const c = config(p, "app", {
      command: ["sh", "-c"],
      args: ['while read l; do echo "got $l"; done; echo bye'],
      stdin: true,
      stdinOnce: true,
    });
    const id = await rt.start(c);
    const s = await rt.attach(id, { stdin: true, tty: false });
    const out = collect(s.stdout);
    s.stdin!.write("one\n");
    await eventually(
      () => out.text,
      (t) => t === "got one\n",
    );
    s.stdin!.end();
    expect(await s.exited).toBe(0);
    expect(out.text).toBe("got one\nbye\n");
    await rt.logsFlushed(id);
    expect(readLog(c.logPath)).toBe("got one\nbye\n");
  });

  it("a tty container: attach gets raw output, and its logs are copied without timestamps", async () => {
    const rt = runtime();
    const p = pod("tty");
    await rt.ensureSandbox(p.podUID, p.podName, p.podNamespace);
    const c = config(p, "app", {
      command: ["sh", "-c"],
      args: ['echo started; while read l; do echo "got $l"; done'],
      stdin: true,
      tty: true,
    });
    const id = await rt.start(c);
    await eventually(
      () => readLog(c.logPath),
      (t) => t === "started\r\n",
    );
    const s = await rt.attach(id, { stdin: true, tty: true });
    expect(s.stderr).toBeUndefined();
    const out = collect(s.stdout);
    s.stdin!.write("x\n");
    // the terminal echoes the input, then the container answers
    await eventually(
      () => out.text,
      (t) => t === "x\r\ngot x\r\n",
    );
    s.close();
    await s.exited;
    expect((await statusOf(rt, id))?.state).toBe("running");
    await eventually(
      () => readLog(c.logPath),
      (t) => t === "started\r\nx\r\ngot x\r\n",
    );
    await rt.stop(id, 0);
  });
});
