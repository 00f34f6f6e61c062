// The CLI (scripts/cli.ts) against a started control plane over TLS (self-signed CA in
// the kubeconfig): user tokens with a kubeconfig context that works with plain HTTPS
// and with kubectl (`auth can-i` says no until a RoleBinding says yes), join tokens,
// and the CLI's errors.

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import https from "node:https";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYAML } from "yaml";
import { type ControlPlane, kubeconfigYAML, ROOT } from "../../scripts/control-plane.ts";
import { type Json, removeStateDir, start, tempStateDir, waitFor } from "./harness.ts";

const KUBECTL = "/usr/bin/kubectl";
const CLI = path.join(ROOT, "scripts", "cli.ts");
// The CLI is TypeScript run by Node >= 22 (type stripping): the project's node if present.
const NODE = fs.existsSync(path.join(ROOT, "node_modules", ".bin", "node"))
  ? path.join(ROOT, "node_modules", ".bin", "node")
  : process.execPath;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cwd: string, args: string[], exe = NODE, pre: string[] = [CLI]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(exe, [...pre, ...args], { cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as any).code === "number" ? (err as any).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

interface Reply {
  status: number;
  body: Json;
}

/** One HTTPS request trusting the control plane's self-signed certificate. */
function call(cp: ControlPlane, token: string, method: string, p: string, body?: unknown): Promise<Reply> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(cp.url + p),
      {
        method,
        ca: cp.caCert,
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/json",
          ...(payload ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: Json = {};
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {
            parsed = { text };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

describe("kubeflare CLI", () => {
  let stateDir = "";
  let cp: ControlPlane;
  let adminKC = "";

  beforeAll(async () => {
    stateDir = tempStateDir();
    cp = await start({ stateDir, tls: true });
    adminKC = path.join(stateDir, "kubeconfig");
    fs.writeFileSync(adminKC, kubeconfigYAML(cp.url, cp.token, cp.caCert), { mode: 0o600 });
  });

  afterAll(async () => {
    await cp?.stop();
    removeStateDir(stateDir);
  });

  it("user create prints a token and writes a kubeconfig context that authenticates (403 until bound)", async () => {
    const out = path.join(stateDir, "alice.kubeconfig");
    const r = await run(stateDir, ["user", "create", "alice", "--group", "devs", "--group", "qa", "--ttl", "1h", "--kubeconfig-out", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^kfu_[a-z0-9]{8}\.[a-z0-9]{32}\n$/);
    const token = r.stdout.trim();
    expect(r.stderr).toContain("alice@kubeflare");

    const kc = parseYAML(fs.readFileSync(out, "utf8"));
    expect(kc["current-context"]).toBe("alice@kubeflare");
    expect(kc.users).toEqual([{ name: "alice@kubeflare", user: { token } }]);
    expect(kc.clusters[0].cluster).toEqual({ server: cp.url, "certificate-authority-data": Buffer.from(cp.caCert!).toString("base64") });
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);

    // Only a hash is stored.
    const stored = await call(cp, cp.token, "GET", `/api/v1/namespaces/kube-system/secrets/user-token-${token.slice(4, 12)}`);
    expect(stored.status).toBe(200);
    expect(JSON.stringify(stored.body)).not.toContain(token.split(".")[1]);

    const who = await call(cp, token, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {});
    expect(who.body.status.userInfo).toMatchObject({ username: "alice", groups: ["devs", "qa", "system:authenticated"] });
    expect((await call(cp, token, "GET", "/api")).status).toBe(200);
    const pods = await call(cp, token, "GET", "/api/v1/namespaces/default/pods");
    expect(pods.status).toBe(403);
    expect(pods.body.message).toBe(
      'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"',
    );

    // A second user merges into the same file; the current context stays.
    const b = await run(stateDir, ["user", "create", "bob", "--kubeconfig-out", out]);
    expect(b.code, b.stderr).toBe(0);
    const merged = parseYAML(fs.readFileSync(out, "utf8"));
    expect(merged["current-context"]).toBe("alice@kubeflare");
    expect(merged.contexts.map((c: Json) => c.name)).toEqual(["alice@kubeflare", "bob@kubeflare"]);
    expect(merged.clusters).toHaveLength(1);

    const list = await run(stateDir, ["user", "list"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+USER\s+GROUPS\s+EXPIRES\s+CREATED/);
    expect(list.stdout).toMatch(/alice\s+devs,qa\s+\d{4}-/);
    expect(list.stdout).toMatch(/bob\s+<none>\s+<never>/);
    expect(list.stdout).not.toContain(token.split(".")[1]);

    // Revoke by id (bob) and by name (alice).
    const bobToken = b.stdout.trim();
    expect((await run(stateDir, ["user", "revoke", bobToken.slice(4, 12)])).code).toBe(0);
    const rv = await run(stateDir, ["user", "revoke", "alice"]);
    expect(rv.code, rv.stderr).toBe(0);
    expect(rv.stdout).toContain('of user "alice"');
    await waitFor("alice's token to stop working", async () => (await call(cp, token, "GET", "/api")).status === 401, 8000);
    await waitFor("bob's token to stop working", async () => (await call(cp, bobToken, "GET", "/api")).status === 401, 8000);
    const again = await run(stateDir, ["user", "revoke", "alice"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no user token with id or user "alice"');
  });

  it("kubectl with the user's kubeconfig: auth can-i says no, then yes after a RoleBinding", async (ctx) => {
    if (!fs.existsSync(KUBECTL)) {
      console.warn(`skipping the kubectl part: ${KUBECTL} is missing`);
      ctx.skip();
    }
    const out = path.join(stateDir, "carol.kubeconfig");
    const r = await run(stateDir, ["user", "create", "carol", "--kubeconfig-out", out]);
    expect(r.code, r.stderr).toBe(0);
    const cache = path.join(stateDir, "kube-cache");
    const kubectl = (...args: string[]) => run(stateDir, ["--kubeconfig", out, "--cache-dir", cache, ...args], KUBECTL, []);

    const whoami = await kubectl("auth", "whoami");
    expect(whoami.code, whoami.stderr).toBe(0);
    expect(whoami.stdout).toMatch(/Username\s+carol/);

    const no = await kubectl("auth", "can-i", "list", "pods");
    expect(no.stdout.trim()).toBe("no");
    expect(no.code).toBe(1);
    const denied = await kubectl("get", "pods");
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('User "carol" cannot list resource "pods" in API group "" in the namespace "default"');

    const rb = await call(cp, cp.token, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", {
      metadata: { name: "carol-view" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "carol" }],
    });
    expect(rb.status).toBe(201);
    await waitFor("can-i to say yes", async () => (await kubectl("auth", "can-i", "list", "pods")).stdout.trim() === "yes", 8000, 250);
    expect((await kubectl("auth", "can-i", "list", "pods", "-n", "kube-system")).stdout.trim()).toBe("no");
    expect((await kubectl("auth", "can-i", "create", "pods")).stdout.trim()).toBe("no");
    const got = await kubectl("get", "pods");
    expect(got.code, got.stderr).toBe(0);
    const listing = await kubectl("auth", "can-i", "--list");
    expect(listing.code, listing.stderr).toBe(0);
    expect(listing.stdout).toMatch(/pods\s+\[\]\s+\[\]\s+\[get list watch\]/);

    // kubectl create token for a ServiceAccount (as the admin).
    await call(cp, cp.token, "POST", "/api/v1/namespaces/default/serviceaccounts", { metadata: { name: "bot" } });
    const adminCtl = (...args: string[]) => run(stateDir, ["--kubeconfig", adminKC, "--cache-dir", cache, ...args], KUBECTL, []);
    const tok = await adminCtl("create", "token", "bot", "--duration", "20m");
    expect(tok.code, tok.stderr).toBe(0);
    const saWho = await call(cp, tok.stdout.trim(), "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {});
    expect(saWho.body.status.userInfo.username).toBe("system:serviceaccount:default:bot");
  });

  it("join-token create / list / revoke", async () => {
    const c = await run(stateDir, ["join-token", "create", "--ttl", "2h", "--description", "rack 7"]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^[a-z0-9]{6}\.[a-z0-9]{16}\n$/);
    const join = c.stdout.trim();
    const [id, secret] = join.split(".");

    const cred = await call(cp, join, "POST", "/apis/kubeflare.dev/v1/nodecredentials", { nodeName: "edge-1" });
    expect(cred.status).toBe(201);
    expect(cred.body.token).toMatch(/^kfn_edge-1\.[a-z0-9]{32}$/);
    expect((await call(cp, join, "GET", "/api/v1/pods")).status).toBe(403);
    const node = await call(cp, cred.body.token, "POST", "/api/v1/nodes", { metadata: { name: "edge-1" } });
    expect(node.status).toBe(201);

    const noTTL = await run(stateDir, ["join-token", "create", "--ttl", "0"]);
    expect(noTTL.code).toBe(0);

    const l = await run(stateDir, ["join-token", "list"]);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toMatch(/^ID\s+EXPIRES\s+DESCRIPTION/);
    expect(l.stdout).toMatch(new RegExp(`${id}\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\s+rack 7`));
    expect(l.stdout).toMatch(new RegExp(`${noTTL.stdout.trim().split(".")[0]}\\s+<never>`));
    expect(l.stdout).not.toContain(secret);

    const rv = await run(stateDir, ["join-token", "revoke", id]);
    expect(rv.code, rv.stderr).toBe(0);
    await waitFor(
      "the join token to stop working",
      async () => (await call(cp, join, "POST", "/apis/kubeflare.dev/v1/nodecredentials", { nodeName: "edge-2" })).status === 401,
      8000,
    );
    const again = await run(stateDir, ["join-token", "revoke", id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`join token "${id}" not found`);
  });

  it("fails clearly: no kubeconfig, unreachable server, bad arguments, bad credentials", async () => {
    const empty = fs.mkdtempSync(path.join(stateDir, "empty-"));
    const none = await run(empty, ["user", "list"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/kubeconfig .*kubeconfig not found/);

    const dead = path.join(empty, "dead.kubeconfig");
    fs.writeFileSync(dead, kubeconfigYAML("https://127.0.0.1:1", "x", cp.caCert));
    const unreachable = await run(empty, ["--kubeconfig", dead, "join-token", "list"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("cannot reach the API server at https://127.0.0.1:1");

    const wrong = path.join(empty, "wrong.kubeconfig");
    fs.writeFileSync(wrong, kubeconfigYAML(cp.url, "not-the-token", cp.caCert));
    const rejected = await run(empty, ["--kubeconfig", wrong, "user", "list"]);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain("401 Unauthorized");

    for (const args of [
      [],
      ["user"],
      ["user", "create"],
      ["user", "create", "a", "b"],
      ["user", "create", "x", "--ttl", "soon"],
      ["user", "create", "system:x"],
      ["join-token", "create", "--group", "g"],
      ["join-token", "revoke", "TOOLONGID"],
      ["nodes", "list"],
      ["user", "list", "--bogus"],
    ]) {
      const r = await run(stateDir, args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toContain("usage:");
    }
    const help = await run(stateDir, ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("join-token create");
  });
});
