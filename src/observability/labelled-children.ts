// A metric's cells (metric-cells.ts), found per label set through nested
// Maps: an observation on the request path builds no label object and joins
// no string (label strings are interned and keep their hash). Label values
// are bounded (routes, credit types, plans, fixed sets), so are these maps.

export class LabelledChildren<C> {
  private readonly byFirst = new Map<string, C | Map<string, C | Map<string, C>>>();

  constructor(private readonly make: (...labels: string[]) => C) {}

  one(a: string): C {
    let child = this.byFirst.get(a) as C | undefined;
    if (child === undefined) {
      child = this.make(a);
      this.byFirst.set(a, child);
    }
    return child;
  }

  two(a: string, b: string): C {
    const level = this.level(this.byFirst as Map<string, unknown>, a);
    let child = level.get(b) as C | undefined;
    if (child === undefined) {
      child = this.make(a, b);
      level.set(b, child);
    }
    return child;
  }

  three(a: string, b: string, c: string): C {
    const level = this.level(this.level(this.byFirst as Map<string, unknown>, a), b);
    let child = level.get(c) as C | undefined;
    if (child === undefined) {
      child = this.make(a, b, c);
      level.set(c, child);
    }
    return child;
  }

  private level(parent: Map<string, unknown>, key: string): Map<string, unknown> {
    let next = parent.get(key) as Map<string, unknown> | undefined;
    if (next === undefined) {
      next = new Map();
      parent.set(key, next);
    }
    return next;
  }
}
