// The diffusion of a completion: the dfill/denoise steps the server sends,
// recorded per document, and turned into frames for the "Show diffusion"
// view (which characters each step fixed). No vscode import: unit-tested.

/** The glyph the server writes for a position that is still masked (engine.MaskGlyph). */
export const MASK = "\u2591";

/** An LSP position (UTF-16 code units). */
export interface Position {
  line: number;
  character: number;
}

/**
 * The params of the dfill/denoise notification. The last one of a
 * completion may have final set: its text is then the answer the editor
 * was given (post-processed and validated; empty when nothing passed).
 */
export interface DenoiseParams {
  uri: string;
  position: Position;
  step: number;
  steps: number;
  text: string;
  final?: boolean;
  /**
   * On the final notification: the text after each step of the span the
   * answer came from (the live steps show the longest span the engine
   * denoised; the answer may come from a shorter one).
   */
  history?: string[];
}

/** The document's text around the completion, when the recording began. */
export interface Context {
  before: string;
  after: string;
}

/** The steps of one completion. */
export interface Recording {
  uri: string;
  position: Position;
  steps: number;
  texts: string[]; // the span after each step received
  stepNumbers: number[]; // the step each text is from
  complete: boolean;
  final?: string; // the answer, from the final notification
  answer?: string; // the first item the server answered for this position
  context?: Context;
}

/**
 * One piece of a frame: text fixed before this step, fixed by it, still
 * masked, or (the last frame) the answer the editor was given.
 */
export interface Segment {
  kind: "old" | "new" | "mask" | "answer";
  text: string;
}

/** What the view shows for one step, or for the answer (final). */
export interface Frame {
  step: number;
  steps: number;
  final: boolean;
  segments: Segment[];
  fixed: number; // characters this step fixed
  masked: number; // positions still masked after it
}

/**
 * Recorder keeps, per document, the steps of the completion being denoised,
 * those of the last completion whose steps all arrived, and those of the
 * last one that the editor showed (the server answered text for it).
 */
export class Recorder {
  private readonly current = new Map<string, Recording>();
  private readonly done = new Map<string, Recording>();
  private readonly shown = new Map<string, Recording>();
  private newest?: string;

  /**
   * add records one step. A step that does not follow the one before (a
   * new request at the same place, or at another) starts a new recording;
   * context, called then, snapshots the text around the position. It
   * returns the recording when this step completed it.
   */
  add(p: DenoiseParams, context?: (uri: string, at: Position) => Context | undefined): Recording | undefined {
    if (p.final) {
      return this.finish(p, context);
    }
    let rec = this.current.get(p.uri);
    const follows =
      rec !== undefined &&
      rec.steps === p.steps &&
      samePosition(rec.position, p.position) &&
      p.step > rec.texts.length;
    if (!follows) {
      rec = newRecording(p, context);
      this.current.set(p.uri, rec);
    }
    rec = rec as Recording;
    rec.texts.push(p.text);
    rec.stepNumbers.push(p.step);
    this.newest = p.uri;
    if (p.step >= p.steps) {
      rec.complete = true;
      this.current.delete(p.uri);
      this.done.set(p.uri, rec);
      return rec;
    }
    return undefined;
  }

  /**
   * finish ends the recording at p's position with the answer of a final
   * notification, whether its steps all arrived (a server that also sends
   * the last step) or not.
   */
  private finish(p: DenoiseParams, context?: (uri: string, at: Position) => Context | undefined): Recording {
    let rec = this.current.get(p.uri);
    if (!rec || !samePosition(rec.position, p.position)) {
      const done = this.done.get(p.uri);
      rec = done && done.final === undefined && samePosition(done.position, p.position) ? done : newRecording(p, context);
    }
    this.current.delete(p.uri);
    if (p.history && p.history.length > 0) {
      rec.texts = [...p.history];
      rec.stepNumbers = p.history.map((_, i) => i + 1);
      rec.steps = p.history.length;
    }
    rec.final = p.text;
    rec.answer = p.text;
    rec.complete = true;
    this.done.set(p.uri, rec);
    if (p.text !== "") {
      this.shown.set(p.uri, rec);
    }
    this.newest = p.uri;
    return rec;
  }

  /** answer notes the text the server answered for a completion at position. */
  answer(uri: string, position: Position, text: string): void {
    for (const rec of [this.done.get(uri), this.current.get(uri)]) {
      if (rec && samePosition(rec.position, position)) {
        rec.answer = text;
        if (rec.complete) {
          this.shown.set(uri, rec);
        }
      }
    }
  }

  /**
   * last returns the document's recording to show: the last completion the
   * editor showed, else the last complete one, else the one in progress.
   */
  last(uri: string): Recording | undefined {
    return this.shown.get(uri) ?? this.done.get(uri) ?? this.current.get(uri);
  }

  /** latest returns the last recording of the document that got a step most recently. */
  latest(): Recording | undefined {
    return this.newest === undefined ? undefined : this.last(this.newest);
  }

  /** forget drops a closed document's recordings. */
  forget(uri: string): void {
    this.current.delete(uri);
    this.done.delete(uri);
    this.shown.delete(uri);
    if (this.newest === uri) {
      this.newest = undefined;
    }
  }
}

function newRecording(p: DenoiseParams, context?: (uri: string, at: Position) => Context | undefined): Recording {
  return {
    uri: p.uri,
    position: { ...p.position },
    steps: p.steps,
    texts: [],
    stepNumbers: [],
    complete: false,
    context: context?.(p.uri, p.position),
  };
}

function samePosition(a: Position, b: Position): boolean {
  return a.line === b.line && a.character === b.character;
}

/**
 * frames turns a recording's texts into what each step shows: the first
 * step's fixed characters are all new; each later step's new characters
 * are those a minimal diff from the step before finds inserted. A final
 * answer is the last frame.
 */
export function frames(rec: Pick<Recording, "texts" | "steps"> & Partial<Pick<Recording, "stepNumbers" | "final">>): Frame[] {
  const out: Frame[] = [];
  let prev: string[] = [];
  rec.texts.forEach((text, i) => {
    const cur = Array.from(text);
    const inserted = insertedIn(prev, cur);
    const segments: Segment[] = [];
    let fixed = 0;
    let masked = 0;
    cur.forEach((ch, j) => {
      let kind: Segment["kind"];
      if (ch === MASK) {
        kind = "mask";
        masked++;
      } else if (inserted[j]) {
        kind = "new";
        fixed++;
      } else {
        kind = "old";
      }
      const last = segments[segments.length - 1];
      if (last && last.kind === kind) {
        last.text += ch;
      } else {
        segments.push({ kind, text: ch });
      }
    });
    out.push({ step: rec.stepNumbers?.[i] ?? i + 1, steps: rec.steps, final: false, segments, fixed, masked });
    prev = cur;
  });
  if (rec.final !== undefined) {
    const last = out[out.length - 1];
    out.push({
      step: last?.step ?? rec.steps,
      steps: rec.steps,
      final: true,
      segments: rec.final === "" ? [] : [{ kind: "answer", text: rec.final }],
      fixed: 0,
      masked: 0,
    });
  }
  return out;
}

/**
 * insertedIn returns, for each element of b, whether a shortest edit script
 * from a to b inserts it (Myers' O(ND) diff). Elements of b it does not
 * insert are kept from a.
 */
export function insertedIn(a: readonly string[], b: readonly string[]): boolean[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = -1;
  outer: for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break outer;
      }
    }
  }
  const inserted = new Array<boolean>(m).fill(false);
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const vd = trace[d];
    const k = x - y;
    const down = k === -d || (k !== d && vd[off + k - 1] < vd[off + k + 1]);
    const prevK = down ? k + 1 : k - 1;
    const prevX = vd[off + prevK];
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
    }
    if (down) {
      inserted[prevY] = true;
    }
    x = prevX;
    y = prevY;
  }
  return inserted;
}

/**
 * contextAround returns up to n whole lines of text before position's line
 * with that line's start, and the line's rest with up to n lines after.
 */
export function contextAround(text: string, at: Position, n = 3): Context {
  const lines = text.split(/\r?\n/);
  const line = lines[at.line] ?? "";
  const ch = Math.min(at.character, line.length);
  const before = lines.slice(Math.max(0, at.line - n), at.line);
  before.push(line.slice(0, ch));
  const after = [line.slice(ch), ...lines.slice(at.line + 1, at.line + 1 + n)];
  return { before: before.join("\n"), after: after.join("\n") };
}
