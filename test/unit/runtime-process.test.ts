import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProcessRuntime } from "../../node-agent/runtime/process.ts";
import {
  type ContainerConfig,
  type ContainerStatus,
  EXEC_TIMEOUT_EXIT_CODE,
  LABEL_ATTEMPT,
  LABEL_CONTAINER_NAME,
  LABEL_NODE,
  LABEL_POD_UID,
} from "../../node-agent/runtime/types.ts";

let dir: string;
let stateDir: string;
const runtimes: ProcessRuntime[] = [];

function runtime(): ProcessRuntime {
  const rt = new ProcessRuntime({ stateDir, nodeName: "n1" });
  runtimes.push(rt);
  return rt;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "kf-proc-"));
  stateDir = path.join(dir, "state");
});

afterEach(async () => {
  // kill whatever a test left running (every runtime sees every record of the state dir)
  const rt = new ProcessRuntime({ stateDir, nodeName: "n1" });
  for (const s of await rt.list()) await rt.remove(s.id);
  for (const r of runtimes.splice(0)) r.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function config(name: string, over: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    podUID: "uid-1",
    podName: "web",
    podNamespace: "default",
    name,
    image: "ignored:latest",
    imagePullPolicy: "IfNotPresent",
    command: [],
    args: [],
    env: {},
    mounts: [],
    ports: [],
    labels: { [LABEL_POD_UID]: "uid-1", [LABEL_CONTAINER_NAME]: name, [LABEL_ATTEMPT]: "0" },
    podAnnotations: {},
    logPath: path.join(dir, "logs", `${name}.log`),
    ...over,
  };
}

async function statusOf(rt: ProcessRuntime, id: string): Promise<ContainerStatus | undefined> {
  return (await rt.list()).find((s) => s.id === id);
}

async function waitExited(rt: ProcessRuntime, id: string, ms = 10_000): Promise<ContainerStatus> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await statusOf(rt, id);
    if (s?.state === "exited") return s;
    if (Date.now() > deadline) throw new Error(`container ${id} still ${s?.state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

/** Live (non-zombie) processes of a process group, from /proc. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgid && f[0] !== "Z" && f[0] !== "X") out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe("ProcessRuntime", () => {
  it("runs command+args with env and workingDir; output goes to logPath; exit 0 is Completed", async () => {
    const rt = runtime();
    expect(rt.name).toBe("process");
    const work = fs.mkdtempSync(path.join(dir, "work-"));
    const c = config("app", {
      command: ["sh", "-c"],
      args: ['echo "hello $GREETING"; pwd; echo oops >&2; echo "$KUBEFLARE_MOUNT_0"'],
      env: { GREETING: "world" },
      workingDir: work,
      mounts: [{ hostPath: "/data", containerPath: "/var/data", readOnly: true }],
    });
    const id = await rt.start(c);
    const s = await waitExited(rt, id);
    expect(s).toMatchObject({ name: "app", state: "exited", exitCode: 0, reason: "Completed", image: "ignored:latest" });
    expect(s.labels).toMatchObject({ [LABEL_POD_UID]: "uid-1", [LABEL_NODE]: "n1" });
    expect(s.finishedAt!.getTime()).toBeGreaterThanOrEqual(s.startedAt!.getTime());
    expect(fs.readFileSync(c.logPath, "utf8")).toBe(`hello world\n${work}\noops\n/data:/var/data:ro\n`);
  });

  it("uses args alone when there is no command; fails clearly with neither", async () => {
    const rt = runtime();
    const id = await rt.start(config("args", { args: ["sh", "-c", "exit 3"] }));
    expect(await waitExited(rt, id)).toMatchObject({ exitCode: 3, reason: "Error" });
    await expect(rt.start(config("none"))).rejects.toThrow("the process runtime needs command or args");
    await expect(rt.start(config("missing", { command: ["/nonexistent/binary"] }))).rejects.toThrow(/cannot start \/nonexistent\/binary/);
    await expect(rt.start(config("nodir", { command: ["true"], workingDir: path.join(dir, "nope") }))).rejects.toThrow(/workingDir/);
    expect((await rt.list()).map((s) => s.name)).toEqual(["args"]);
  });

  it("appends to logPath across restarts of the container", async () => {
    const rt = runtime();
    const c = config("app", { command: ["echo", "line"] });
    await waitExited(rt, await rt.start(c));
    await waitExited(rt, await rt.start(c));
    expect(fs.readFileSync(c.logPath, "utf8")).toBe("line\nline\n");
  });

  it("stop: SIGTERM ends a well-behaved process at once", async () => {
    const rt = runtime();
    const id = await rt.start(config("sleeper", { command: ["sleep", "60"] }));
    expect((await statusOf(rt, id))!.state).toBe("running");
    const t0 = Date.now();
    await rt.stop(id, 10);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await statusOf(rt, id)).toMatchObject({ state: "exited", exitCode: 143, reason: "Error" });
  });

  it("stop: SIGKILL after the grace period for a process that ignores TERM (and its children)", async () => {
    const rt = runtime();
    const id = await rt.start(config("stubborn", { command: ["sh", "-c", 'trap "" TERM; sleep 60 & wait; sleep 60'] }));
    await new Promise((r) => setTimeout(r, 200)); // let the trap be set
    const pid = rt.record(id)!.pid;
    const t0 = Date.now();
    await rt.stop(id, 1);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(5000);
    expect(await statusOf(rt, id)).toMatchObject({ state: "exited", exitCode: 137 });
    // the whole process group is gone, the background sleep too
    expect(groupMembers(pid)).toEqual([]);
  });

  it("exec runs on the host with the container's env and workingDir", async () => {
    const rt = runtime();
    const work = fs.mkdtempSync(path.join(dir, "work-"));
    const id = await rt.start(config("app", { command: ["sleep", "60"], env: { TOKEN: "s3cret" }, workingDir: work }));
    expect(await rt.exec(id, ["echo", "hi"], 5000)).toEqual({ exitCode: 0, output: "hi\n" });
    expect(await rt.exec(id, ["sh", "-c", 'echo "$TOKEN $(pwd)"; exit 2'], 5000)).toEqual({ exitCode: 2, output: `s3cret ${work}\n` });
    const slow = await rt.exec(id, ["sleep", "10"], 200);
    expect(slow.exitCode).toBe(EXEC_TIMEOUT_EXIT_CODE);
    expect(slow.output).toContain("timed out");
    expect((await rt.exec(id, ["/nonexistent"], 1000)).exitCode).toBe(127);
    await rt.stop(id, 1);
    await expect(rt.exec(id, ["true"], 1000)).rejects.toThrow(/not running/);
  });

  it("remove kills a running container and forgets it", async () => {
    const rt = runtime();
    const id = await rt.start(config("app", { command: ["sleep", "60"] }));
    const pid = rt.record(id)!.pid;
    await rt.remove(id);
    expect(await rt.list()).toEqual([]);
    expect(pidAlive(pid)).toBe(false);
    expect(fs.readdirSync(stateDir)).toEqual([]);
    await rt.remove(id); // idempotent
    await rt.stop(id, 1);
  });

  it("re-adoption: a new instance lists the still-running container, with the same id and labels, and can stop it", async () => {
    const a = runtime();
    const c = config("app", { command: ["sh", "-c", 'trap "" TERM; sleep 60'] });
    const id = await a.start(c);
    const before = (await statusOf(a, id))!;
    a.close(); // the agent goes away; the process does not

    const b = runtime();
    const after = (await statusOf(b, id))!;
    expect(after).toMatchObject({ id, name: "app", state: "running", labels: before.labels, image: c.image });
    expect(after.startedAt).toEqual(before.startedAt);
    expect(await b.exec(id, ["echo", "hi"], 5000)).toEqual({ exitCode: 0, output: "hi\n" });

    const t0 = Date.now();
    await b.stop(id, 0.5);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    expect(await statusOf(b, id)).toMatchObject({ state: "exited", exitCode: 137 });
    // and the record says so for the next instance
    expect(await statusOf(runtime(), id)).toMatchObject({ state: "exited", exitCode: 137 });
  });

  it("re-adoption: a process that died while the agent was down is exited, exit code unknown", async () => {
    const a = runtime();
    const id = await a.start(config("app", { command: ["sleep", "60"] }));
    const pid = a.record(id)!.pid;
    a.close();
    process.kill(-pid, "SIGKILL");
    for (let i = 0; i < 200 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 10));

    const b = runtime();
    const s = (await statusOf(b, id))!;
    expect(s).toMatchObject({ id, state: "exited", exitCode: 137, reason: "Unknown" });
    expect(s.finishedAt).toBeInstanceOf(Date);
  });

  it("re-adoption: a recorded exit code is kept", async () => {
    const a = runtime();
    const id = await a.start(config("app", { command: ["sh", "-c", "exit 7"] }));
    await waitExited(a, id);
    expect(await statusOf(runtime(), id)).toMatchObject({ state: "exited", exitCode: 7, reason: "Error" });
  });

  it("re-adoption: a reused pid (other /proc start time) is not the container", async () => {
    const rt = runtime();
    const id = await rt.start(config("app", { command: ["sh", "-c", "exit 0"] }));
    await waitExited(rt, id);
    // forge two records pointing at this (live) test process: one with its real start time, one not
    const file = path.join(stateDir, `${id}.json`);
    const rec = JSON.parse(fs.readFileSync(file, "utf8"));
    const stat = fs.readFileSync(`/proc/${process.pid}/stat`, "utf8");
    const startTime = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    const forged = { ...rec, pid: process.pid, exitCode: undefined, reason: undefined, finishedAt: undefined };
    fs.writeFileSync(path.join(stateDir, "same.json"), JSON.stringify({ ...forged, id: "same", procStartTime: startTime }));
    fs.writeFileSync(path.join(stateDir, "reused.json"), JSON.stringify({ ...forged, id: "reused", procStartTime: "1" }));
    const b = runtime();
    expect((await statusOf(b, "same"))!.state).toBe("running");
    expect(await statusOf(b, "reused")).toMatchObject({ state: "exited", reason: "Unknown", exitCode: 137 });
    // (do not let afterEach kill the test process itself)
    fs.rmSync(path.join(stateDir, "same.json"));
  });

  it("sandbox is the host: an IPv4 address, nothing to pull", async () => {
    const rt = new ProcessRuntime({ stateDir, nodeName: "n1", hostIP: "192.0.2.10" });
    expect(await rt.ensureSandbox("uid-1", "web", "default")).toEqual({ ip: "192.0.2.10" });
    expect((await runtime().ensureSandbox("uid-1", "web", "default")).ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    await rt.ensureImage("does-not-exist:anywhere", "Never");
    await rt.removeSandbox("uid-1");
    expect(await rt.version()).toBe(process.versions.node);
  });
});
