// Keeps the config in force up to date with its file, the way Kubernetes
// delivers ConfigMaps: the mounted file is a symlink into a `..data`
// directory that is swapped atomically, so a watch on the file itself dies
// on the first update. We watch the directory instead, treat any event as
// "maybe changed", debounce, re-read through the path, compare a hash,
// validate and swap; re-arm the watcher when it fails; and poll as a
// fallback (a subPath mount never updates at all: see docs/operations.md).

import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../logger.js';
import { compileConfig, type CompiledConfig } from './compiled-config.js';
import { diffConfigs } from './config-diff.js';
import { ConfigError, formatIssue } from './config-error.js';
import { parseConfigText, readConfigFile } from './load-config.js';

export type ReloadResult = 'success' | 'error' | 'unchanged';

export interface ConfigReloaderOptions {
  readonly path: string;
  readonly logger: Logger;
  /** Extra checks a new config must pass before it is swapped in (e.g. secrets). */
  readonly validate?: (config: CompiledConfig) => void;
  /** Called after a successful swap. */
  readonly onSwap?: (config: CompiledConfig) => void;
  readonly onResult?: (result: ReloadResult) => void;
  /** Fallback poll interval; default 1000 ms (a change is live within 2 s). */
  readonly pollMs?: number;
  readonly debounceMs?: number;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export class ConfigReloader {
  private config: CompiledConfig;
  private textHash: string;
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private rearm: NodeJS.Timeout | undefined;
  private running: Promise<ReloadResult> | undefined;
  private again = false;
  private stopped = false;

  private constructor(
    private readonly options: ConfigReloaderOptions,
    initial: CompiledConfig,
    text: string,
  ) {
    this.config = initial;
    this.textHash = sha256(text);
  }

  /** Loads the file once (throwing ConfigError when it is invalid). */
  static async load(options: ConfigReloaderOptions): Promise<ConfigReloader> {
    const { parsed, text } = await readConfigFile(options.path);
    const config = compileConfig(parsed);
    options.validate?.(config);
    return new ConfigReloader(options, config, text);
  }

  current(): CompiledConfig {
    return this.config;
  }

  start(): void {
    this.arm();
    this.poller = setInterval(() => void this.reload('poll'), this.options.pollMs ?? 1000);
    this.poller.unref();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    clearTimeout(this.debounce);
    clearTimeout(this.rearm);
    clearInterval(this.poller);
  }

  /**
   * Re-reads the file and swaps in a valid new config. Concurrent calls are
   * folded into one run plus one follow-up, so a burst of events never reads
   * a half-written file last.
   */
  reload(reason: string): Promise<ReloadResult> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.runReload(reason).finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.reload(reason);
      }
    });
    return this.running;
  }

  private async runReload(reason: string): Promise<ReloadResult> {
    const { logger, path } = this.options;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      // Mid-swap or deleted: the next event or poll will find the new file.
      logger.warn({ reason, err: (err as Error).message }, 'config file unreadable; keeping the config in force');
      return 'unchanged';
    }
    const hash = sha256(text);
    if (hash === this.textHash) {
      // The poll finds nothing every second; only asked-for reloads say so.
      if (reason !== 'poll') logger.debug({ reason, configHash: this.config.hash }, 'config unchanged');
      return 'unchanged';
    }
    let next: CompiledConfig;
    try {
      next = compileConfig(parseConfigText(text, path));
      this.options.validate?.(next);
    } catch (err) {
      // A file that fails the same way again is counted and logged once.
      if (hash !== this.failedHash) {
        this.failedHash = hash;
        const errors = err instanceof ConfigError ? err.issues.map(formatIssue) : [`${path}: ${(err as Error).message}`];
        logger.error({ reason, errors, configHash: this.config.hash }, 'config reload failed; keeping the config in force');
        this.options.onResult?.('error');
      }
      return 'error';
    }
    this.textHash = hash;
    this.failedHash = undefined;
    const changes = diffConfigs(this.config.parsed, next.parsed);
    if (changes.length === 0) {
      // A comment or a reformat: the same config, nothing to swap.
      logger.debug({ reason, configHash: this.config.hash }, 'config unchanged');
      return 'unchanged';
    }
    const previous = this.config.hash;
    this.config = next;
    this.options.onSwap?.(next);
    this.options.onResult?.('success');
    logger.info({ reason, previous, configHash: next.hash, changes }, 'config reloaded');
    return 'success';
  }

  private failedHash: string | undefined;

  private arm(): void {
    if (this.stopped) return;
    try {
      this.watcher = watch(dirname(this.options.path), { persistent: false }, () => this.schedule());
      this.watcher.on('error', () => this.restartWatch());
    } catch {
      this.restartWatch();
    }
  }

  private restartWatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.rearm);
    this.rearm = setTimeout(() => this.arm(), 1000);
    this.rearm.unref();
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload('watch'), this.options.debounceMs ?? 100);
    this.debounce.unref();
  }
}
