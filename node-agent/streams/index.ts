// The stream handlers of the agent's tunnel, by stream kind (see types.ts for headers).

import type { StreamHandler } from "./types.ts";

export const HANDLERS: Record<string, StreamHandler> = {};
