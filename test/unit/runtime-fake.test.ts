import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeRuntime, fakeAnnotation } from "../../node-agent/runtime/fake.ts";
import { type ContainerConfig, ImagePullError, LABEL_CONTAINER_NAME, LABEL_NODE, LABEL_POD_UID } from "../../node-agent/runtime/types.ts";

let dir: string;
let clock: number;
const now = () => clock;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "kf-fake-"));
  clock = Date.parse("2026-01-01T00:00:00Z");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function config(name: string, annotations: Record<string, string> = {}, over: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    podUID: "uid-1",
    podName: "web",
    podNamespace: "default",
    name,
    image: "nginx:1.27",
    imagePullPolicy: "IfNotPresent",
    command: [],
    args: [],
    env: {},
    mounts: [],
    ports: [],
    labels: { [LABEL_POD_UID]: "uid-1", [LABEL_CONTAINER_NAME]: name },
    podAnnotations: annotations,
    logPath: path.join(dir, "logs", `${name}.log`),
    ...over,
  };
}

describe("FakeRuntime", () => {
  it("runs forever by default; stop, list and remove", async () => {
    const rt = new FakeRuntime({ nodeName: "n1", now });
    expect(rt.name).toBe("fake");
    const id = await rt.start(config("app"));
    clock += 3600_000;
    let [st] = await rt.list();
    expect(st).toMatchObject({ id, name: "app", state: "running", image: "nginx:1.27" });
    expect(st.labels).toMatchObject({ [LABEL_POD_UID]: "uid-1", [LABEL_NODE]: "n1" });
    expect(st.startedAt!.getTime()).toBe(Date.parse("2026-01-01T00:00:00Z"));

    await rt.stop(id, 30);
    [st] = await rt.list();
    expect(st).toMatchObject({ state: "exited", exitCode: 143, reason: "Error" });
    expect(st.finishedAt!.getTime()).toBe(clock);
    await rt.stop(id, 30); // idempotent
    await rt.remove(id);
    expect(await rt.list()).toEqual([]);
    await rt.stop("nope", 1); // unknown ids are already gone
    await rt.remove("nope");
  });

  it("exits by the clock with run-seconds and exit-code", async () => {
    const rt = new FakeRuntime({ nodeName: "n1", now });
    const ok = await rt.start(config("ok", { "fake.kubeflare.dev/run-seconds": "10" }));
    const bad = await rt.start(config("bad", { "fake.kubeflare.dev/run-seconds": "2.5", "fake.kubeflare.dev/exit-code": "3" }));
    const byId = async () => new Map((await rt.list()).map((s) => [s.id, s]));
    expect((await byId()).get(ok)!.state).toBe("running");
    clock += 2500;
    expect((await byId()).get(bad)).toMatchObject({ state: "exited", exitCode: 3, reason: "Error" });
    expect((await byId()).get(ok)!.state).toBe("running");
    clock += 7500;
    const s = (await byId()).get(ok)!;
    expect(s).toMatchObject({ state: "exited", exitCode: 0, reason: "Completed" });
    expect(s.finishedAt!.getTime() - s.startedAt!.getTime()).toBe(10_000);
    // stopping an exited container keeps its own exit
    await rt.stop(ok, 5);
    expect((await byId()).get(ok)).toMatchObject({ exitCode: 0, reason: "Completed" });
  });

  it("per-container annotations win over pod-wide ones", async () => {
    const a = {
      "fake.kubeflare.dev/run-seconds": "1",
      "fake.kubeflare.dev/exit-code": "1",
      "fake.kubeflare.dev/sidecar.run-seconds": "",
      "fake.kubeflare.dev/main.exit-code": "0",
    };
    expect(fakeAnnotation(a, "main", "exit-code")).toBe("0");
    expect(fakeAnnotation(a, "other", "exit-code")).toBe("1");
    const rt = new FakeRuntime({ nodeName: "n1", now });
    const main = await rt.start(config("main", a));
    const other = await rt.start(config("other", a));
    const sidecar = await rt.start(config("sidecar", a));
    clock += 1000;
    const m = new Map((await rt.list()).map((s) => [s.id, s]));
    expect(m.get(main)).toMatchObject({ state: "exited", exitCode: 0 });
    expect(m.get(other)).toMatchObject({ state: "exited", exitCode: 1 });
    expect(m.get(sidecar)!.state).toBe("running"); // empty per-container value: run forever
  });

  it("OOMKilled", async () => {
    const rt = new FakeRuntime({ nodeName: "n1", now });
    await rt.start(config("hog", { "fake.kubeflare.dev/run-seconds": "0", "fake.kubeflare.dev/oom-killed": "true" }));
    expect((await rt.list())[0]).toMatchObject({ state: "exited", exitCode: 137, reason: "OOMKilled" });
  });

  it("start-error fails start and creates nothing", async () => {
    const rt = new FakeRuntime({ nodeName: "n1", now });
    await expect(rt.start(config("app", { "fake.kubeflare.dev/app.start-error": "exec format error" }))).rejects.toThrow(
      "exec format error",
    );
    expect(await rt.list()).toEqual([]);
    await rt.start(config("other", { "fake.kubeflare.dev/app.start-error": "exec format error" }));
    expect(await rt.list()).toHaveLength(1);
  });

  it("image-pull-error fails ensureImage with ImagePullError", async () => {
    const rt = new FakeRuntime({ nodeName: "n1", now });
    const podAnnotations = { "fake.kubeflare.dev/image-pull-error": "manifest unknown" };
    await rt.ensureImage("nginx", "Always"); // no context: always present
    await rt.ensureImage("nginx", "Always", { podAnnotations: {} });
    const err = await rt.ensureImage("nginx", "IfNotPresent", { podAnnotations, containerName: "app" }).catch((e) => e);
    expect(err).toBeInstanceOf(ImagePullError);
    expect(err).toMatchObject({ reason: "ErrImagePull", message: "manifest unknown" });
    const never = await rt.ensureImage("nginx", "Never", { podAnnotations }).catch((e) => e);
    expect(never).toMatchObject({ reason: "ErrImageNeverPull" });
    await rt
      .ensureImage("nginx", "Always", {
        podAnnotations: { ...podAnnotations, "fake.kubeflare.dev/init.image-pull-error": "" },
        containerName: "init",
      })
      .then(
        () => expect.unreachable("an empty per-container value still fails (with a default message)"),
        (e) => expect(e.message).toContain('failed to pull image "nginx"'),
      );
  });

  it("exec succeeds unless exec-exit-code says otherwise; only in running containers", async () => {
    const rt = new FakeRuntime({ nodeName: "n1", now });
    const ok = await rt.start(config("ok"));
    const failing = await rt.start(
      config("failing", { "fake.kubeflare.dev/failing.exec-exit-code": "1", "fake.kubeflare.dev/failing.exec-output": "not ready" }),
    );
    expect(await rt.exec(ok, ["cat", "/tmp/healthy"], 1000)).toEqual({ exitCode: 0, output: "" });
    expect(await rt.exec(failing, ["cat", "/tmp/healthy"], 1000)).toEqual({ exitCode: 1, output: "not ready" });
    await rt.stop(ok, 0);
    await expect(rt.exec(ok, ["true"], 1000)).rejects.toThrow(/not running/);
    await expect(rt.exec("nope", ["true"], 1000)).rejects.toThrow(/not found/);
  });

  it("appends a line to logPath on start and stop; logs: false writes nothing", async () => {
    const rt = new FakeRuntime({ nodeName: "n1", now });
    const c = config("app");
    const id1 = await rt.start(c);
    await rt.stop(id1, 1);
    await rt.start(c);
    const lines = fs.readFileSync(c.logPath, "utf8").trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe("2026-01-01T00:00:00.000Z fake container app started (image nginx:1.27)");
    expect(lines[1]).toContain("stopped");

    const quiet = new FakeRuntime({ nodeName: "n1", now, logs: false });
    const q = config("quiet");
    await quiet.start(q);
    expect(fs.existsSync(q.logPath)).toBe(false);
  });

  it("sandboxes: idempotent, IP from the option", async () => {
    const rt = new FakeRuntime({ nodeName: "n1", podIP: (uid) => (uid === "a" ? "10.0.0.1" : "10.0.0.2") });
    expect(await rt.ensureSandbox("a", "p", "ns")).toEqual({ ip: "10.0.0.1" });
    expect(await rt.ensureSandbox("a", "p", "ns")).toEqual({ ip: "10.0.0.1" });
    expect(await rt.ensureSandbox("b", "q", "ns")).toEqual({ ip: "10.0.0.2" });
    await rt.removeSandbox("a");
    expect(await new FakeRuntime({ nodeName: "n1" }).ensureSandbox("x", "p", "ns")).toEqual({ ip: "127.0.0.1" });
    expect(await rt.version()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("holds many thousands of containers cheaply (hollow nodes)", async () => {
    const rt = new FakeRuntime({ nodeName: "hollow", now, logs: false });
    const n = 20_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await rt.start(config(`c${i}`, i % 2 ? { "fake.kubeflare.dev/run-seconds": "60" } : {}));
    }
    clock += 61_000;
    const all = await rt.list();
    const elapsed = performance.now() - t0;
    expect(all).toHaveLength(n);
    expect(all.filter((s) => s.state === "exited")).toHaveLength(n / 2);
    expect(new Set(all.map((s) => s.id)).size).toBe(n);
    expect(elapsed).toBeLessThan(5000);
  });
});
