import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Projects: pure unit tests on Node; tests inside workerd (the Worker and its Durable
// Objects with real SQLite storage) in three configurations: the API alone (no store
// subscribers, so no controller touches test objects), the whole control plane
// (scheduler and controllers subscribed, short node grace periods), and "cron" (no
// notifications at all, so only the cron resync can wake the controllers); and
// end-to-end tests on Node that start the control plane with Miniflare's API and talk
// to it over HTTP like real clients do.
const workerd = (name: string, include: string[], vars: Record<string, string>) => ({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: { bindings: { ADMIN_TOKEN: "test-admin-token", WATCH_PROGRESS_MS: "100", WATCH_BOOKMARK_SECONDS: "0", ...vars } },
    }),
  ],
  test: { name, include, testTimeout: 60_000 },
});

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node" },
      },
      workerd("workers", ["test/workers/**/*.test.ts", "test/contract/**/*.test.ts"], { STORE_SUBSCRIBERS: "" }),
      workerd("controllers", ["test/controllers/**/*.test.ts"], {
        STORE_SUBSCRIBERS: "SCHEDULER,CONTROLLERS",
        NODE_MONITOR_GRACE_SECONDS: "3",
        POD_EVICTION_TOLERATION_SECONDS: "2",
        CLOUD_INSTANCE_POLL_SECONDS: "1",
      }),
      workerd("cron", ["test/cron/**/*.test.ts"], { STORE_SUBSCRIBERS: "" }),
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
