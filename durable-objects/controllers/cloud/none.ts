// CLOUD_PROVIDER=none: no cloud. Every instance exists and has no metadata (nodes are
// left as their agents registered them, never deleted by the cloud), and there are no
// load balancers (Services of type LoadBalancer stay pending; the service controller
// says so in an event).

import type { CloudProvider } from "./provider.ts";

export function noneProvider(): CloudProvider {
  return {
    name: "none",
    instances: {
      instanceExists: async () => true,
      instanceMetadata: async () => undefined,
    },
  };
}
