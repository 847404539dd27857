/**
 * Backend selection: `@tensorflow/tfjs-node` ('tensorflow') when it is installed and loads, else the
 * WebAssembly backend ('wasm', `@tensorflow/tfjs-backend-wasm`), else plain JavaScript ('cpu').
 * Both are optional peer dependencies, loaded here by a dynamic `import()` only when
 * {@link initBackend} tries them: importing loss-balancer registers no backend and changes nothing in
 * tfjs. tfjs-node downloads libtensorflow when installed, which fails on machines without internet, so
 * its absence is never an error.
 */
import * as tf from '@tensorflow/tfjs';

/** The backends loss-balancer knows how to start. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
/** `'auto'`: the first of tensorflow, wasm, cpu that starts. */
export type BackendChoice = BackendName | 'auto';

const ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

async function tryNode(): Promise<boolean> {
  try {
    const mod = '@tensorflow/tfjs-node';
    await import(/* @vite-ignore */ mod);
    return tf.findBackend('tensorflow') !== null || tf.engine().registryFactory.tensorflow !== undefined;
  } catch {
    return false;
  }
}

type Listener = (...args: unknown[]) => void;

/**
 * The wasm backend's Emscripten glue installs `uncaughtException` / `unhandledRejection` handlers
 * that rethrow, so that Node prints the glue's whole minified source line with any uncaught error.
 * Remove the handlers it added during start-up; Node's own reporting is then used.
 */
async function withoutGlueHandlers<T>(f: () => Promise<T>): Promise<T> {
  if (typeof process === 'undefined' || typeof process.listeners !== 'function') return f();
  const events = ['uncaughtException', 'unhandledRejection'] as const;
  const before = events.map((e) => new Set(process.listeners(e as 'uncaughtException') as Listener[]));
  try {
    return await f();
  } finally {
    events.forEach((e, i) => {
      for (const l of process.listeners(e as 'uncaughtException') as Listener[]) {
        if (!before[i].has(l)) process.removeListener(e as 'uncaughtException', l as never);
      }
    });
  }
}

/** Register the wasm backend by importing `@tensorflow/tfjs-backend-wasm` (optional peer); false when absent. */
async function tryWasm(): Promise<boolean> {
  if (tf.findBackendFactory('wasm')) return true;
  try {
    const mod = '@tensorflow/tfjs-backend-wasm';
    await withoutGlueHandlers(() => import(/* @vite-ignore */ mod));
    return !!tf.findBackendFactory('wasm');
  } catch {
    return false;
  }
}

async function start(name: BackendName): Promise<boolean> {
  if (name === 'tensorflow' && !(await tryNode())) return false;
  if (name === 'wasm' && !(await tryWasm())) return false;
  try {
    return await withoutGlueHandlers(async () => (await tf.setBackend(name)) && (await tf.ready(), tf.getBackend() === name));
  } catch {
    return false;
  }
}

/**
 * The backend tfjs is already using (set by `tf.setBackend`, or chosen by tfjs when the first op ran),
 * or null when none was started yet. Reading it starts nothing.
 */
function activeBackend(): string | null {
  const engine = tf.engine() as unknown as { backendName?: string | null; backendInstance?: unknown };
  return engine.backendInstance != null && engine.backendName ? engine.backendName : null;
}

/**
 * Start a backend. `choice` defaults to the environment variable `LOSS_BALANCER_BACKEND`; without
 * either, a backend the program already uses (`tf.setBackend('webgl')`, or the one tfjs picked for an
 * earlier op) is kept and its name returned, and only when none is in use yet is one chosen as with
 * `'auto'`: the first of tensorflow (`@tensorflow/tfjs-node`), wasm (`@tensorflow/tfjs-backend-wasm`),
 * cpu that starts. Pass `'auto'` to choose even though a backend is in use. A named backend that
 * cannot start (e.g. its optional package is not installed) falls back along tensorflow → wasm → cpu,
 * with a warning. Returns the name of the backend in use.
 *
 * @throws Error for an unknown backend name.
 */
export async function initBackend(choice?: BackendChoice, warn: (m: string) => void = console.warn): Promise<string> {
  const fromEnv = typeof process !== 'undefined' ? process.env?.LOSS_BALANCER_BACKEND : undefined;
  const given = choice ?? (fromEnv || undefined);
  if (given === undefined) {
    const active = activeBackend();
    if (active) return active;
  }
  const wanted = (given ?? 'auto') as string;
  if (wanted !== 'auto' && !(ORDER as readonly string[]).includes(wanted)) {
    throw new Error(`unknown backend "${wanted}"; use one of auto, ${ORDER.join(', ')}`);
  }
  const candidates = wanted === 'auto' ? ORDER : [wanted as BackendName, ...ORDER.filter((b) => b !== wanted)];
  for (const name of candidates) {
    if (await start(name)) {
      if (wanted !== 'auto' && name !== wanted) warn(`loss-balancer: backend "${wanted}" is not available; using "${name}"${wanted === 'wasm' ? ' (install the optional peer: npm install @tensorflow/tfjs-backend-wasm@<your tfjs version>)' : ''}`);
      return name;
    }
  }
  throw new Error('no tfjs backend could be started');
}

/** The name of the backend in use. */
export function currentBackend(): string {
  return tf.getBackend();
}
