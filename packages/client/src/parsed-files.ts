/**
 * The last parse of each file, by path, kept with the exact text it was made from: a file read
 * again with the same text gives the same (frozen) value without parsing and validating it
 * again; any other text is parsed and checked anew. An agent reads its state files at every
 * request (a `volact client` command may have changed them meanwhile): the files are still
 * read every time, only the work on an unchanged text is saved. A parse that throws keeps
 * nothing. Bounded (emptied when full).
 */
export class ParsedFiles<T> {
  readonly #byPath = new Map<string, { readonly text: string; readonly value: T }>();

  constructor(private readonly max = 16_384) {}

  parse(path: string, text: string, parse: (text: string) => T): T {
    const hit = this.#byPath.get(path);
    if (hit !== undefined && hit.text === text) return hit.value;
    const value = deepFreeze(parse(text));
    if (this.#byPath.size >= this.max) this.#byPath.clear();
    this.#byPath.set(path, { text, value });
    return value;
  }
}

/** Frozen all the way down: a value shared by later reads cannot be changed by one of them. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
