// Commit notifications. After each commit the store kicks the notifier with the new
// revision; kicks that arrive before the notifier has run are coalesced into one
// delivery of the newest revision, so a burst of writes costs each subscriber one
// wake-up. Delivery is fire-and-forget: a subscriber that misses a notification is
// healed by the cron resync, so a failed send is logged and not retried here.

export type NotifySend = (revision: number, resync: boolean) => Promise<void> | void;

export class Notifier {
  private pending = false;
  private latest = 0;
  private resync = false;

  private readonly send: NotifySend;
  private readonly schedule: (fn: () => void) => void;

  constructor(send: NotifySend, schedule: (fn: () => void) => void = (fn) => setTimeout(fn, 0)) {
    this.send = send;
    this.schedule = schedule;
  }

  kick(revision: number, resync = false): void {
    if (revision > this.latest) this.latest = revision;
    this.resync ||= resync;
    if (this.pending) return;
    this.pending = true;
    this.schedule(() => this.flush());
  }

  private flush(): void {
    this.pending = false;
    const rev = this.latest;
    const resync = this.resync;
    this.resync = false;
    try {
      const p = this.send(rev, resync);
      if (p && typeof (p as Promise<void>).catch === "function") {
        (p as Promise<void>).catch((e) => console.warn(`store notification failed: ${String(e)}`));
      }
    } catch (e) {
      console.warn(`store notification failed: ${String(e)}`);
    }
  }
}
