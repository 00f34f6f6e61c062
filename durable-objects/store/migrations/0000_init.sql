CREATE TABLE `kv` (
	`id` integer PRIMARY KEY NOT NULL,
	`key` text NOT NULL,
	`value` text NOT NULL,
	`create_revision` integer NOT NULL,
	`prev_revision` integer NOT NULL,
	`deleted` integer NOT NULL,
	`ts` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `kv_key_id` ON `kv` (`key`,`id`);--> statement-breakpoint
CREATE TABLE `meta` (
	`name` text PRIMARY KEY NOT NULL,
	`value` integer NOT NULL
);
