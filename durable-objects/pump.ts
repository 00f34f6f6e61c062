// The wake-up loop shared by the scheduler and controller-manager Durable Objects:
// notifications, the cron and alarms all call run(); at most one pass runs at a time,
// and a call that arrives during a pass makes the pass go round once more. After the
// loop the DO alarm is set to the earliest deadline (or a 5-minute safety net).

const SAFETY_NET_MS = 5 * 60_000;

export class Pump {
  private running = false;
  private again = false;
  private readonly name: string;
  private readonly pass: () => Promise<boolean>;
  private readonly storage: DurableObjectStorage;
  private readonly nextDue: () => number | undefined;

  /** pass() does one round of work and returns true if it should go round again. */
  constructor(name: string, storage: DurableObjectStorage, pass: () => Promise<boolean>, nextDue: () => number | undefined) {
    this.name = name;
    this.storage = storage;
    this.pass = pass;
    this.nextDue = nextDue;
  }

  async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        if (await this.pass()) this.again = true;
      } while (this.again);
    } catch (e) {
      console.error(`${this.name} pass failed: ${e instanceof Error ? e.stack : String(e)}`);
    } finally {
      this.running = false;
      await this.scheduleAlarm();
    }
  }

  private async scheduleAlarm(): Promise<void> {
    const now = Date.now();
    const at = this.nextDue() ?? now + SAFETY_NET_MS;
    const current = await this.storage.getAlarm();
    if (current === null || current > at || current < now) await this.storage.setAlarm(Math.max(at, now + 10));
  }
}
