/**
 * @module registry
 * Unique names for live processes (Elixir `Registry`, keys: :unique). Guarantees: a name maps to
 * at most one pid; a lookup never returns a dead pid (a dead holder's entry is dropped on read, and
 * removed when it exits); a new registration may take over a dead holder's name at once, so a
 * restarted child re-registers in the same step as its start. It does NOT buffer messages for a
 * name whose holder is restarting: lookups then miss, and `call` fails with `noproc` (OTP).
 * See docs/runtime.md §2.13.
 */
import type { Pid } from './pid.js';
import type { Result } from './result.js';
import { err, ok } from './result.js';

export type RegisterError = { readonly kind: 'already_registered'; readonly pid: Pid };

export class Registry {
  private readonly byName = new Map<string, Pid>();

  /** Register `pid` under `name`. Fails if a live process holds the name (even `pid` itself). */
  register(name: string, pid: Pid): Result<Pid, RegisterError> {
    const holder = this.byName.get(name);
    if (holder?.alive) return err({ kind: 'already_registered', pid: holder });
    if (!pid.alive) return ok(pid);
    this.byName.set(name, pid);
    pid.onExit(() => {
      // Only remove our own entry: the name may already belong to a newer incarnation.
      if (this.byName.get(name) === pid) this.byName.delete(name);
    });
    return ok(pid);
  }

  /** Idempotent: `true` if an entry was removed. */
  unregister(name: string): boolean {
    return this.byName.delete(name);
  }

  whereis(name: string): Pid | undefined {
    const pid = this.byName.get(name);
    if (pid && !pid.alive) {
      this.byName.delete(name);
      return undefined;
    }
    return pid;
  }

  /** The names held by live processes (a snapshot). */
  names(): string[] {
    return this.entries().map(([n]) => n);
  }

  /** `[name, pid]` pairs of live processes (a snapshot). */
  entries(): [string, Pid][] {
    const out: [string, Pid][] = [];
    for (const [n, p] of this.byName) if (p.alive) out.push([n, p]);
    return out;
  }

  /** Every name `pid` holds. */
  keys(pid: Pid): string[] {
    const out: string[] = [];
    for (const [n, p] of this.byName) if (p === pid && p.alive) out.push(n);
    return out;
  }
}

/** The registry used when none is given (names are then global to the Node process). */
export const defaultRegistry = new Registry();
