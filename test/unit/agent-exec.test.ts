// `kubectl exec` / `kubectl attach` through the agent's handlers: two real Muxes back to back
// in memory, the control-plane side playing kubectl (each chunk one WebSocket message), the
// agent side running the handlers against the process runtime (real processes).

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CHANNEL_ERROR, CHANNEL_STDERR, CHANNEL_STDOUT, PROTOCOL_V4, PROTOCOL_V5 } from "../../node-agent/remotecommand.ts";
import { FakeRuntime } from "../../node-agent/runtime/fake.ts";
import { ProcessRuntime } from "../../node-agent/runtime/process.ts";
import { type ContainerConfig, LABEL_ATTEMPT, LABEL_CONTAINER_NAME, LABEL_POD_UID } from "../../node-agent/runtime/types.ts";
import { HANDLERS } from "../../node-agent/streams/index.ts";
import type { StreamDeps } from "../../node-agent/streams/types.ts";
import { Mux, type StreamReply, type TunnelStream } from "../../workers/shared/tunnel.ts";

const UID = "uid-exec";
let dir: string;
let rt: ProcessRuntime;
let cp: Mux;
let agent: Mux;
const handlerErrors: unknown[] = [];

function podObject(containers: string[]) {
  return { metadata: { name: "web", namespace: "default", uid: UID }, spec: { containers: containers.map((name) => ({ name })) } };
}
let pod: Record<string, any> = podObject(["main"]);

function deps(): StreamDeps {
  return {
    nodeName: "n1",
    runtime: rt,
    stateDir: dir,
    podIP: () => "127.0.0.1",
    pod: (uid) => (uid === UID ? pod : undefined),
    pods: () => [pod],
    stats: () => ({}),
    findContainer: async (uid, name) => {
      const all = (await rt.list()).filter((s) => s.labels[LABEL_POD_UID] === uid && s.labels[LABEL_CONTAINER_NAME] === name);
      return all.find((s) => s.state === "running") ?? all[0];
    },
    logFiles: () => [],
    log: () => {},
  };
}

function config(name: string, over: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    podUID: UID,
    podName: "web",
    podNamespace: "default",
    name,
    image: "ignored",
    imagePullPolicy: "IfNotPresent",
    command: ["sleep", "1000"],
    args: [],
    env: { GREETING: "hello from the pod" },
    mounts: [],
    ports: [],
    labels: { [LABEL_POD_UID]: UID, [LABEL_CONTAINER_NAME]: name, [LABEL_ATTEMPT]: "0" },
    podAnnotations: {},
    logPath: path.join(dir, "logs", `${name}.log`),
    ...over,
  };
}

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "kf-exec-"));
  rt = new ProcessRuntime({ stateDir: path.join(dir, "state"), nodeName: "n1" });
  pod = podObject(["main"]);
  await rt.start(config("main"));
  handlerErrors.length = 0;
  cp = new Mux({ side: "control-plane", send: (f) => queueMicrotask(() => agent.receive(f)) });
  agent = new Mux({
    side: "agent",
    send: (f) => queueMicrotask(() => cp.receive(f)),
    onOpen: (s) => {
      const h = HANDLERS[s.header.kind];
      if (!h) return s.reset("no handler");
      h(s, deps()).catch((e) => handlerErrors.push(e));
    },
  });
});

afterEach(async () => {
  cp.close();
  agent.close();
  for (const s of await rt.list()) await rt.remove(s.id);
  rt.close();
  fs.rmSync(dir, { recursive: true, force: true });
  expect(handlerErrors).toEqual([]);
});

const enc = new TextEncoder();
const dec = new TextDecoder();

/** kubectl's side of one session: the messages it got, by channel, and what it can send. */
class Kubectl {
  readonly stream: TunnelStream;
  readonly messages: Uint8Array[] = [];
  private ended = false;
  private waiters: (() => void)[] = [];

  constructor(header: Record<string, unknown>, slow = 0) {
    const stream = cp.open({ kind: "exec", ...header });
    this.stream = stream;
    void (async () => {
      try {
        for await (const m of stream) {
          this.messages.push(m);
          this.wake();
          if (slow) await new Promise((r) => setTimeout(r, slow));
        }
      } catch {
        // reset
      }
      this.ended = true;
      this.wake();
    })();
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  reply(): Promise<StreamReply> {
    return this.stream.waitReply();
  }

  text(channel: number): string {
    return this.messages
      .filter((m) => m[0] === channel)
      .map((m) => dec.decode(m.subarray(1)))
      .join("");
  }

  bytes(channel: number): number {
    return this.messages.filter((m) => m[0] === channel).reduce((n, m) => n + m.length - 1, 0);
  }

  status(): any {
    const m = this.messages.find((x) => x[0] === CHANNEL_ERROR && x.length > 1);
    return m ? JSON.parse(dec.decode(m.subarray(1))) : undefined;
  }

  async until(ok: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline)
        throw new Error(`timed out; got ${JSON.stringify(this.messages.map((m) => [m[0], dec.decode(m.subarray(1))]))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  /** Waits for the agent's END (after the status). */
  done(): Promise<void> {
    return this.until(() => this.ended);
  }

  send(channel: number, data: string | Uint8Array): Promise<void> {
    const d = typeof data === "string" ? enc.encode(data) : data;
    const m = new Uint8Array(d.length + 1);
    m[0] = channel;
    m.set(d, 1);
    return this.stream.write(m);
  }

  closeStdin(): Promise<void> {
    return this.stream.write(new Uint8Array([255, 0]));
  }
}

function exec(command: string[], over: Record<string, unknown> = {}, slow = 0): Kubectl {
  return new Kubectl(
    {
      kind: "exec",
      namespace: "default",
      pod: "web",
      uid: UID,
      container: "main",
      command,
      stdin: false,
      stdout: true,
      stderr: true,
      tty: false,
      protocol: PROTOCOL_V5,
      ...over,
    },
    slow,
  );
}

function pidAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("exec through the tunnel (process runtime)", () => {
  it("stdin 'hello' to cat comes back on stdout; v5's close of stdin ends cat with Success", async () => {
    const k = exec(["cat"], { stdin: true });
    expect((await k.reply()).code).toBe(200);
    await k.send(0, "hello\n");
    await k.until(() => k.text(CHANNEL_STDOUT) === "hello\n");
    // the first message is the empty "session is up" one on stdout
    expect([...k.messages[0]]).toEqual([CHANNEL_STDOUT]);
    await k.closeStdin();
    await k.done();
    expect(k.status()).toEqual({ metadata: {}, status: "Success" });
  });

  it("a non-zero exit ends with the NonZeroExitCode Status on channel 3", async () => {
    const k = exec(["sh", "-c", "exit 3"]);
    await k.done();
    expect(k.status()).toEqual({
      metadata: {},
      status: "Failure",
      message: "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
      reason: "NonZeroExitCode",
      details: { causes: [{ reason: "ExitCode", message: "3" }] },
    });
  });

  it("stderr comes on channel 2, stdout on 1; the command gets the container's env", async () => {
    const k = exec(["sh", "-c", 'echo "$GREETING"; echo oops >&2']);
    await k.done();
    expect(k.text(CHANNEL_STDOUT)).toBe("hello from the pod\n");
    expect(k.text(CHANNEL_STDERR)).toBe("oops\n");
    expect(k.status().status).toBe("Success");
  });

  it("channels the client did not ask for are not sent", async () => {
    const k = exec(["sh", "-c", "echo out; echo err >&2"], { stderr: false });
    await k.done();
    expect(k.text(CHANNEL_STDOUT)).toBe("out\n");
    expect(k.messages.some((m) => m[0] === CHANNEL_STDERR)).toBe(false);
  });

  it("tty: the command runs on a terminal, output on stdout only, and resize sets its size", async () => {
    const k = exec(
      [
        "sh",
        "-c",
        'test -t 0 && test -t 1 && echo on-a-tty; while [ "$(stty size)" != "30 100" ]; do sleep 0.05; done; echo resized; exit 5',
      ],
      {
        stdin: true,
        tty: true,
        stderr: true,
      },
    );
    expect((await k.reply()).code).toBe(200);
    await k.send(4, '{"Width":100,"Height":30}\n');
    await k.done();
    expect(k.text(CHANNEL_STDOUT)).toBe("on-a-tty\r\nresized\r\n");
    expect(k.messages.some((m) => m[0] === CHANNEL_STDERR)).toBe(false);
    expect(k.status().details.causes[0].message).toBe("5");
  });

  it("tty: input is echoed by the terminal, as kubectl exec -it shows it", async () => {
    const k = exec(["cat"], { stdin: true, tty: true });
    await k.send(0, "hi\n");
    await k.until(() => k.text(CHANNEL_STDOUT) === "hi\r\nhi\r\n");
    await k.closeStdin();
    await k.done();
    expect(k.status().status).toBe("Success");
  });

  it("v4: the same Status JSON; the client's close signal is honoured there too", async () => {
    const k = exec(["sh", "-c", "cat; exit 4"], { stdin: true, protocol: PROTOCOL_V4 });
    await k.send(0, "x");
    await k.closeStdin();
    await k.done();
    expect(k.text(CHANNEL_STDOUT)).toBe("x");
    expect(k.status().reason).toBe("NonZeroExitCode");
  });

  it("large output arrives whole, at the pace the client reads it (backpressure)", async () => {
    const k = exec(["head", "-c", "3000000", "/dev/zero"], {}, 1);
    await k.until(() => k.bytes(CHANNEL_STDOUT) > 300_000);
    // the agent's side never holds more than about a window of unsent output
    expect(cp.stats().perStream[0]?.buffered ?? 0).toBeLessThanOrEqual(256 * 1024 + 64 * 1024);
    await k.done();
    expect(k.bytes(CHANNEL_STDOUT)).toBe(3_000_000);
    expect(k.status().status).toBe("Success");
  }, 30_000);

  it("a client that goes away (reset) gets the exec'd process killed", async () => {
    const k = exec(["sh", "-c", "echo $$; exec sleep 1000"]);
    await k.until(() => /\d+\n/.test(k.text(CHANNEL_STDOUT)));
    const pid = Number(k.text(CHANNEL_STDOUT).trim());
    expect(pidAlive(pid)).toBe(true);
    k.stream.reset("kubectl went away");
    const deadline = Date.now() + 5000;
    while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(pidAlive(pid)).toBe(false);
  });

  it("a command that cannot start is an InternalError Status after the 200", async () => {
    const k = exec(["/nonexistent/binary"]);
    expect((await k.reply()).code).toBe(200);
    await k.done();
    expect(k.status()).toMatchObject({ status: "Failure", reason: "InternalError", code: 500 });
    expect(k.status().message).toMatch(/^Internal error occurred: error executing command in container: /);
  });

  it("an unknown container is refused with 400, a pod that is not here with 404", async () => {
    const k = exec(["true"], { container: "nope" });
    expect(await k.reply()).toEqual({ code: 400, reason: "BadRequest", message: "container nope is not valid for pod web" });
    await k.done();
    const k2 = exec(["true"], { uid: "other" });
    expect(await k2.reply()).toMatchObject({ code: 404, reason: "NotFound" });
    await k2.done();
  });

  it("a container of the spec that does not run is 404; no container name means the first one", async () => {
    pod = podObject(["main", "sidecar"]);
    const k = exec(["true"], { container: "sidecar" });
    expect(await k.reply()).toMatchObject({ code: 404, reason: "NotFound" });
    const k2 = exec(["sh", "-c", "echo first"], { container: "" });
    expect((await k2.reply()).code).toBe(200);
    await k2.done();
    expect(k2.text(CHANNEL_STDOUT)).toBe("first\n");
  });

  it("exec without a command, or with an unknown protocol, is a bad request", async () => {
    expect((await exec([]).reply()).code).toBe(400);
    expect(await exec(["true"], { protocol: "v9.channel.k8s.io" }).reply()).toMatchObject({ code: 400, reason: "BadRequest" });
  });
});

describe("attach through the tunnel (process runtime)", () => {
  async function attachable(name: string, over: Partial<ContainerConfig>) {
    pod = podObject(["main", name]);
    await rt.start(config(name, over));
  }

  function attach(container: string, over: Record<string, unknown> = {}): Kubectl {
    return new Kubectl({
      kind: "attach",
      namespace: "default",
      pod: "web",
      uid: UID,
      container,
      stdin: true,
      stdout: true,
      stderr: true,
      tty: false,
      protocol: PROTOCOL_V5,
      ...over,
    });
  }

  it("input reaches the container's stdin and its new output comes back; with stdinOnce closing stdin ends it", async () => {
    await attachable("shell", {
      command: ["sh", "-c", 'echo before-attach; while read l; do echo "got $l"; done; echo bye'],
      stdin: true,
      stdinOnce: true,
    });
    await new Promise((r) => setTimeout(r, 200)); // "before-attach" is in the log, before the attachment
    const k = attach("shell");
    expect((await k.reply()).code).toBe(200);
    await k.send(0, "one\n");
    await k.until(() => k.text(CHANNEL_STDOUT).includes("got one\n"));
    await k.closeStdin();
    await k.done();
    expect(k.text(CHANNEL_STDOUT)).toBe("got one\nbye\n");
    expect(k.status()).toEqual({ metadata: {}, status: "Success" });
  });

  it("a client that goes away detaches without stopping the container", async () => {
    await attachable("shell", { command: ["sh", "-c", 'while read l; do echo "got $l"; done'], stdin: true });
    const k = attach("shell");
    await k.send(0, "a\n");
    await k.until(() => k.text(CHANNEL_STDOUT) === "got a\n");
    k.stream.reset("gone");
    await new Promise((r) => setTimeout(r, 200));
    const s = (await rt.list()).find((c) => c.labels[LABEL_CONTAINER_NAME] === "shell");
    expect(s?.state).toBe("running");
    // a second attachment still reaches the same stdin
    const k2 = attach("shell");
    await k2.send(0, "b\n");
    await k2.until(() => k2.text(CHANNEL_STDOUT) === "got b\n");
    k2.stream.reset("gone");
  });
});

describe("FakeRuntime interactive exec and attach (built-in commands)", () => {
  /** The text of a readable, once it has ended. */
  function collect(r: NodeJS.ReadableStream): Promise<string> {
    let text = "";
    r.on("data", (c: Buffer) => {
      text += c.toString("utf8");
    });
    return new Promise((resolve) => r.on("end", () => resolve(text)));
  }

  async function fake(annotations: Record<string, string> = {}) {
    const f = new FakeRuntime({ nodeName: "n1", logs: false });
    const id = await f.start({ ...config("main"), podAnnotations: annotations });
    return { f, id };
  }

  it("echo, exit N, sh -c 'exit N', and cat until stdin ends", async () => {
    const { f, id } = await fake();
    const echo = await f.execStream(id, ["echo", "a", "b"], { stdin: false, tty: false });
    const out = collect(echo.stdout);
    expect(await echo.exited).toBe(0);
    expect(await out).toBe("a b\n");
    expect(await (await f.execStream(id, ["exit", "7"], { stdin: false, tty: false })).exited).toBe(7);
    expect(await (await f.execStream(id, ["sh", "-c", "exit 3"], { stdin: false, tty: false })).exited).toBe(3);
    const cat = await f.execStream(id, ["cat"], { stdin: true, tty: false });
    const catOut = collect(cat.stdout);
    cat.stdin!.write("hi");
    cat.stdin!.end();
    expect(await cat.exited).toBe(0);
    expect(await catOut).toBe("hi");
  });

  it("other commands print exec-output and exit with exec-exit-code; attach echoes stdin", async () => {
    const { f, id } = await fake({ "fake.kubeflare.dev/exec-output": "canned\n", "fake.kubeflare.dev/exec-exit-code": "2" });
    const s = await f.execStream(id, ["ls", "/"], { stdin: false, tty: true });
    expect(s.stderr).toBeUndefined();
    const out = collect(s.stdout);
    expect(await s.exited).toBe(2);
    expect(await out).toBe("canned\n");
    const a = await f.attach(id, { stdin: true, tty: false });
    const aOut = collect(a.stdout);
    a.stdin!.end("typed");
    expect(await a.exited).toBeNull();
    expect(await aOut).toBe("typed");
  });
});
