// A circuit breaker in front of the store: after a failure it stops sending
// requests to a dead Redis (each would wait out the timeout), probes it in
// the background, and closes again as soon as a probe answers.

export interface StoreBreakerOptions {
  /** Resolves when the store answers. */
  readonly probe: () => Promise<void>;
  /** How often an open breaker probes the store (ms). Default 1000 (DESIGN: at most 5 s). */
  readonly probeIntervalMs?: number;
  /** Called after the store answered again (replay the journal here). */
  readonly onClose?: () => Promise<void> | void;
  readonly onOpen?: () => void;
}

export class StoreBreaker {
  private open = false;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private stopped = false;

  constructor(private readonly options: StoreBreakerOptions) {}

  get isOpen(): boolean {
    return this.open;
  }

  /** A store call failed: stop calling the store until a probe answers. */
  failure(): void {
    if (this.open || this.stopped) return;
    this.open = true;
    this.options.onOpen?.();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    // One probe timer at a time.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tryClose(), this.options.probeIntervalMs ?? 1000);
    this.timer.unref();
  }

  private async tryClose(): Promise<void> {
    if (this.probing || this.stopped) return;
    this.probing = true;
    try {
      await this.options.probe();
      this.open = false;
      await this.options.onClose?.();
    } catch {
      // Still down: probed again below.
    } finally {
      this.probing = false;
      // Down, or down again while onClose ran (a failure() then found a probe
      // in progress and scheduled none): keep probing until it answers.
      if (this.open && !this.stopped) this.schedule();
    }
  }
}
