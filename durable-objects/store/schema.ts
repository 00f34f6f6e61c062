// drizzle schema of the StoreDO's SQLite database. Migrations are generated from it by
// `npm run db:generate` (drizzle-kit) into ./migrations and applied when the DO starts.

import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * The log: one row per write. id is the revision (assigned by the store, strictly
 * increasing), so the newest row of a key is its current value and every row is an
 * event. A delete appends a row with deleted = true that keeps the last value, so the
 * DELETED watch event can carry the object.
 */
export const kv = sqliteTable(
  "kv",
  {
    id: integer("id").primaryKey(),
    key: text("key").notNull(),
    value: text("value").notNull(),
    createRevision: integer("create_revision").notNull(),
    prevRevision: integer("prev_revision").notNull(),
    deleted: integer("deleted", { mode: "boolean" }).notNull(),
    /** Commit time in ms since the epoch, for the compaction age limit. */
    ts: integer("ts").notNull(),
  },
  (t) => [index("kv_key_id").on(t.key, t.id)],
);

/** Small named integers: "compacted" (the compacted revision). */
export const meta = sqliteTable("meta", {
  name: text("name").primaryKey(),
  value: integer("value").notNull(),
});
