import { defineConfig } from "drizzle-kit";

export default defineConfig({
  out: "./durable-objects/store/migrations",
  schema: "./durable-objects/store/schema.ts",
  dialect: "sqlite",
  driver: "durable-sqlite",
});
