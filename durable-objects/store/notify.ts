// Commit notifications. After each commit the store kicks the notifier with the new
// revision. Kicks are coalesced twice: kicks made before the notifier runs become one
// delivery of the newest revision, and while a delivery is in flight further kicks
// only mark it dirty, so each subscriber gets at most one notification per round trip
// however fast the store commits. Delivery is fire-and-forget: a subscriber that misses
// one is healed by the cron resync, so a failed send is logged and not retried here.

export type NotifySend = (revision: number, resync: boolean) => Promise<void> | void;

export class Notifier {
  private scheduled = false;
  private inFlight = false;
  private dirty = false;
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
    if (this.inFlight) {
      this.dirty = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    this.dirty = false;
    const rev = this.latest;
    const resync = this.resync;
    this.resync = false;
    let p: Promise<void> | void;
    try {
      p = this.send(rev, resync);
    } catch (e) {
      console.warn(`store notification failed: ${String(e)}`);
      return;
    }
    if (!p || typeof (p as Promise<void>).then !== "function") return;
    this.inFlight = true;
    (p as Promise<void>)
      .catch((e) => console.warn(`store notification failed: ${String(e)}`))
      .finally(() => {
        this.inFlight = false;
        if (this.dirty) this.kick(this.latest);
      });
  }
}
